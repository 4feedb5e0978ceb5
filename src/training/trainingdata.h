#pragma once

// What a training run reads: the dataset's train and validation samples and the transform
// pipelines, resolved from a TrainConfig. Torch-free; shared by the trainer, the CLI and the GUI.

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"
#include "transforms/batchloader.h"
#include "transforms/transformadvice.h"
#include "transforms/transforms.h"

#include <QString>
#include <QStringList>

#include <atomic>
#include <optional>
#include <vector>

namespace ifs {

struct TrainConfig;

struct TrainingData
{
    QStringList classes;
    std::vector<LoaderSample> train;
    std::vector<LoaderSample> val;
    QString trainRoot;
    QString valRoot; ///< empty when val is a split of trainRoot (or there is no val)
    DatasetTraits traits; ///< of the training images' headers
    QStringList notes; ///< "val: a seeded 10% split of train (600 images)"
};

/// Scans the dataset as torchvision's ImageFolder would: `dataRoot` itself, or its train/ and
/// val/ (valid/, validation/, test/) folders, or dataRoot + valRoot; without a validation folder a
/// seeded per-class split of valSplit (at least one image per class with two or more). Fails when
/// torchvision would refuse a folder or the splits' classes differ.
Result<TrainingData> prepareTrainingData(const TrainConfig &config,
                                         const std::atomic_bool *cancel = nullptr);

/// The samples of one ImageFolder root (for evaluation); classes must match `classes` when given.
Result<std::vector<LoaderSample>> imageFolderSamples(const QString &root, QStringList *classes);

struct ResolvedPipelines
{
    CompiledPipeline train;
    CompiledPipeline val;
    QString trainSource; ///< canonical torchvision source, as stored in checkpoints
    QString valSource;
    QStringList notes;
};

/// Parses and compiles the train/val sources; an empty source gets defaultPipelines(traits).
/// Errors name the pipeline: "the train transforms: …".
Result<ResolvedPipelines> resolvePipelines(const QString &trainSource, const QString &valSource,
                                           const DatasetTraits &traits);

/// The class names of a checkpoint's `class_to_idx` in index order; nullopt unless it is a
/// non-empty dict whose values are exactly the indices 0 to n − 1.
std::optional<QStringList> classesFromClassToIdx(const ckpt::Value &classToIdx);

/// Parses and compiles one pipeline's source.
Result<CompiledPipeline> compilePipelineSource(const QString &source, const QString &what);

} // namespace ifs
