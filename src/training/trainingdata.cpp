#include "training/trainingdata.h"

#include "dataset/datasetlayout.h"
#include "training/training.h"
#include "transforms/torchrng.h"
#include "transforms/transformspec.h"

#include <QDir>
#include <QFileInfo>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace {

Result<IndexPtr> scanRoot(const QString &root, const std::atomic_bool *cancel)
{
    auto index = scanImageFolder(root, {}, {}, cancel);
    if (!index)
        return index.error();
    if (index->cancelled)
        return Error{QStringLiteral("the scan of “%1” was cancelled").arg(root),
                     ErrorCode::Cancelled};
    if (!index->refusal.isEmpty())
        return Error{
            QStringLiteral("torchvision's ImageFolder refuses “%1”: %2").arg(root, index->refusal)};
    if (index->samples.empty())
        return Error{QStringLiteral("“%1” holds no images in class folders").arg(root)};
    return IndexPtr(std::make_shared<ImageFolderIndex>(std::move(index).value()));
}

std::vector<LoaderSample> samplesOf(const ImageFolderIndex &index)
{
    std::vector<LoaderSample> samples;
    samples.reserve(index.samples.size());
    for (const Sample &s : index.samples)
        samples.push_back({index.absolutePath(s), s.classIndex});
    return samples;
}

} // namespace

Result<std::vector<LoaderSample>> imageFolderSamples(const QString &root, QStringList *classes)
{
    auto index = scanRoot(root, nullptr);
    if (!index)
        return index.error();
    if (classes && !classes->isEmpty() && index.value()->classes != *classes) {
        return Error{QStringLiteral("the classes of “%1” (%2) are not the model's (%3): the class "
                                    "indices would not mean the same")
                         .arg(root, index.value()->classes.join(QStringLiteral(", ")),
                              classes->join(QStringLiteral(", ")))};
    }
    if (classes && classes->isEmpty())
        *classes = index.value()->classes;
    return samplesOf(*index.value());
}

Result<TrainingData> prepareTrainingData(const TrainConfig &config, const std::atomic_bool *cancel)
{
    TrainingData data;
    QString trainRoot = QDir::cleanPath(config.dataRoot);
    QString valRoot = config.valRoot.isEmpty() ? QString() : QDir::cleanPath(config.valRoot);
    const DatasetLayout layout = detectLayout(trainRoot);
    if (layout.hasSplits()) {
        trainRoot = layout.splitRoot(layout.splits.first());
        if (valRoot.isEmpty() && layout.splits.size() > 1)
            valRoot = layout.splitRoot(layout.splits.at(1));
    }
    auto train = scanRoot(trainRoot, cancel);
    if (!train)
        return train.error();
    const ImageFolderIndex &trainIndex = *train.value();
    data.classes = trainIndex.classes;
    data.trainRoot = trainRoot;
    if (!valRoot.isEmpty()) {
        auto val = scanRoot(valRoot, cancel);
        if (!val)
            return val.error();
        const SplitMismatch mismatch = compareSplits(QStringLiteral("train"), trainIndex,
                                                     QStringLiteral("val"), *val.value());
        if (!mismatch.isEmpty())
            return Error{mismatch.message()};
        data.train = samplesOf(trainIndex);
        data.val = samplesOf(*val.value());
        data.valRoot = valRoot;
        data.notes.append(QStringLiteral("Training on %1 (%2 images), validating on %3 (%4 images)")
                              .arg(trainRoot)
                              .arg(data.train.size())
                              .arg(valRoot)
                              .arg(data.val.size()));
    } else if (config.valSplit > 0.0) {
        // A seeded split per class, so that every class is validated and the split does not
        // change between runs with the same seed.
        std::vector<std::vector<int>> byClass(size_t(data.classes.size()));
        for (size_t i = 0; i < trainIndex.samples.size(); ++i)
            byClass[size_t(trainIndex.samples[i].classIndex)].push_back(int(i));
        std::vector<bool> isVal(trainIndex.samples.size(), false);
        TorchGenerator rng(config.seed ^ 0x5eed5011177ull);
        for (std::vector<int> &members : byClass) {
            for (size_t i = members.size(); i > 1; --i)
                std::swap(members[i - 1], members[size_t(rng.random64() % i)]);
            size_t take = size_t(std::lround(double(members.size()) * config.valSplit));
            if (take == 0 && members.size() > 1)
                take = 1;
            take = std::min(take, members.size() > 0 ? members.size() - 1 : 0);
            for (size_t k = 0; k < take; ++k)
                isVal[size_t(members[k])] = true;
        }
        const std::vector<LoaderSample> all = samplesOf(trainIndex);
        for (size_t i = 0; i < all.size(); ++i)
            (isVal[i] ? data.val : data.train).push_back(all[i]);
        data.notes.append(QStringLiteral("No validation folder: a seeded %1% split per class of %2 "
                                         "(%3 training, %4 validation images)")
                              .arg(config.valSplit * 100.0, 0, 'g', 3)
                              .arg(trainRoot)
                              .arg(data.train.size())
                              .arg(data.val.size()));
    } else {
        data.train = samplesOf(trainIndex);
        data.notes.append(QStringLiteral("No validation set: accuracy is measured on the "
                                         "training batches only, and best.pth is not written"));
    }
    if (data.train.empty())
        return Error{QStringLiteral("no training images are left in “%1”").arg(trainRoot)};

    QStringList paths;
    const size_t stride = std::max<size_t>(1, data.train.size() / 64);
    for (size_t i = 0; i < data.train.size(); i += stride)
        paths.append(data.train[i].path);
    data.traits = sampleDatasetTraits(paths, int(paths.size()));
    return data;
}

std::optional<QStringList> classesFromClassToIdx(const ckpt::Value &classToIdx)
{
    if (!classToIdx.isDict() || classToIdx.size() == 0)
        return std::nullopt;
    QStringList classes(classToIdx.size());
    std::vector<bool> seen(size_t(classes.size()), false);
    for (const auto &[key, value] : classToIdx.entries()) {
        const qint64 i = value.toInt();
        if (!key.isString() || !value.isInt() || i < 0 || i >= classes.size() || seen[size_t(i)])
            return std::nullopt;
        seen[size_t(i)] = true;
        classes[i] = key.toString();
    }
    return classes;
}

Result<CompiledPipeline> compilePipelineSource(const QString &source, const QString &what)
{
    auto parsed = parseTransforms(source);
    if (!parsed)
        return Error{QStringLiteral("the %1 transforms: %2").arg(what, parsed.errorMessage())};
    auto compiled = CompiledPipeline::compile(parsed.value());
    if (!compiled)
        return Error{QStringLiteral("the %1 transforms: %2").arg(what, compiled.errorMessage())};
    return compiled;
}

Result<ResolvedPipelines> resolvePipelines(const QString &trainSource, const QString &valSource,
                                           const DatasetTraits &traits)
{
    ResolvedPipelines out;
    const PipelinePair defaults = defaultPipelines(traits);
    QString train = trainSource.trimmed();
    QString val = valSource.trimmed();
    if (train.isEmpty()) {
        train = toTorchvisionSource(defaults.train);
        out.notes.append(QStringLiteral("Train transforms: the defaults for this dataset"));
    }
    if (val.isEmpty()) {
        val = toTorchvisionSource(defaults.val);
        out.notes.append(QStringLiteral("Val transforms: the defaults for this dataset"));
    }
    auto trainCompiled = compilePipelineSource(train, QStringLiteral("train"));
    if (!trainCompiled)
        return trainCompiled.error();
    auto valCompiled = compilePipelineSource(val, QStringLiteral("val"));
    if (!valCompiled)
        return valCompiled.error();
    out.train = trainCompiled.value();
    out.val = valCompiled.value();
    out.trainSource = toTorchvisionSource(out.train.pipeline());
    out.valSource = toTorchvisionSource(out.val.pipeline());
    return out;
}

} // namespace ifs
