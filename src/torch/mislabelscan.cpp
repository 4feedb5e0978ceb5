// Scoring every image of a dataset for label issues with a loaded Classifier. See
// training/mislabel.h. No libtorch here: it runs Classifier::evaluate(), which lives in ifs_torch.

#include "training/mislabel.h"

#include "dataset/datasetlayout.h"
#include "training/trainingdata.h"

namespace ifs {

Result<MislabelScan> scoreDatasetLabels(Classifier &classifier, const QString &datasetRoot,
                                        MislabelRanking ranking,
                                        const std::function<void(qint64, qint64)> &progress,
                                        const std::atomic_bool *cancel)
{
    const DatasetLayout layout = detectLayout(datasetRoot);
    const QStringList splits = layout.hasSplits() ? layout.splits : QStringList{QString()};
    MislabelScan scan;
    std::vector<std::vector<LoaderSample>> samples;
    qint64 total = 0;
    for (const QString &split : splits) {
        QStringList classes;
        auto found = imageFolderSamples(layout.splitRoot(split), &classes);
        if (!found)
            return found.error();
        if (classes != classifier.classes())
            return Error{QStringLiteral("the checkpoint's classes (%1) are not those of “%2” (%3): "
                                        "the class indices would not mean the same")
                             .arg(classifier.classes().join(QStringLiteral(", ")),
                                  layout.splitRoot(split), classes.join(QStringLiteral(", ")))};
        scan.notes.append(QStringLiteral("%1: %2 images")
                              .arg(split.isEmpty() ? QStringLiteral("all") : split)
                              .arg(found->size()));
        total += qint64(found->size());
        samples.push_back(std::move(found.value()));
    }
    scan.classes = classifier.classes();
    qint64 before = 0;
    for (size_t i = 0; i < samples.size(); ++i) {
        if (samples[i].empty())
            continue;
        auto evaluation = classifier.evaluate(
            samples[i], 128, 0,
            [&](qint64 done, qint64) {
                if (progress)
                    progress(before + done, total);
            },
            cancel);
        if (!evaluation)
            return evaluation.error();
        scan.ranked += mislabelCandidates(evaluation.value(), splits[qsizetype(i)]);
        scan.failures += evaluation->failures;
        before += qint64(samples[i].size());
    }
    rankMislabelCandidates(scan.ranked, ranking);
    return scan;
}

} // namespace ifs
