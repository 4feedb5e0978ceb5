#pragma once

// Likely mislabelled images: every image of a dataset scored by a trained model's confidence in
// its given label (self-confidence, as cleanlab ranks label issues, and the cross-entropy loss),
// ranked worst first. Torch-free: the ranking works on an Evaluation's predictions;
// scoreDatasetLabels() (implemented in ifs_torch) evaluates every split with the val transforms.

#include "base/result.h"
#include "training/evaluation.h"

#include <QList>
#include <QSet>
#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>

namespace ifs {

/// One image whose given label the model doubts.
struct MislabelCandidate
{
    QString path;
    QString split; ///< "train", "val", … or "" for a plain root
    int label = -1; ///< the given label (its class folder)
    int predicted = -1;
    float selfConfidence = 0.f; ///< the model's probability of the given label
    float predictedProbability = 0.f;
    float loss = 0.f; ///< cross-entropy of the given label (−log selfConfidence)
    /// cleanlab's normalized margin: p(label) − max_{k≠label} p(k), in −1..1.
    float margin = 0.f;
};

enum class MislabelRanking {
    SelfConfidence, ///< lowest p(label) first (cleanlab's default; the same order as the loss)
    Loss, ///< highest loss first
    NormalizedMargin, ///< lowest margin first
};

/// The predictions of `evaluation` (on images of `split`) as candidates, unranked. `margin`
/// needs the runner-up's probability, which SamplePrediction does not hold: it is exact
/// (p(label) − p(predicted)) when the prediction is wrong, and the lower bound
/// p(label) − (1 − p(label)) when it is right (the two orders agree on the doubtful images).
QList<MislabelCandidate> mislabelCandidates(const Evaluation &evaluation,
                                            const QString &split = {});

/// Sorts candidates worst first (ties by path, so that the order is stable).
void rankMislabelCandidates(QList<MislabelCandidate> &candidates,
                            MislabelRanking ranking = MislabelRanking::SelfConfidence);

/// The fraction of the first `k` candidates whose path is in `mislabelled` (precision at k);
/// 0 when k is 0.
double precisionAtK(const QList<MislabelCandidate> &ranked, const QSet<QString> &mislabelled,
                    qsizetype k);

/// A dataset scored for label issues.
struct MislabelScan
{
    QStringList classes;
    QList<MislabelCandidate> ranked; ///< every image, worst first
    QList<LoaderFailure> failures; ///< images that could not be scored
    QStringList notes; ///< "train: 600 images", …
};

/// Scores every image of the dataset at `datasetRoot` (each split of a train/val layout, or the
/// root itself) with `classifier`'s val transforms, train images included, and ranks them.
/// Fails when the dataset's classes are not the checkpoint's. `progress(done, total)` over all
/// images; `cancel` polled per batch. Implemented in ifs_torch (src/torch/mislabelscan.cpp).
Result<MislabelScan> scoreDatasetLabels(Classifier &classifier, const QString &datasetRoot,
                                        MislabelRanking ranking = MislabelRanking::SelfConfidence,
                                        const std::function<void(qint64, qint64)> &progress = {},
                                        const std::atomic_bool *cancel = nullptr);

} // namespace ifs
