#pragma once

// What the Transforms workspace knows about pipelines beyond running them: mistakes that cost
// hours (caught before training), defaults that fit a dataset, the dataset's own mean and std,
// and Python source in and out.

#include "base/result.h"
#include "transforms/transformspec.h"

#include <QList>
#include <QSize>
#include <QString>
#include <QStringList>

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

namespace ifs {

/// What a sample of the dataset's image headers says.
struct DatasetTraits
{
    QSize typicalSize; ///< the most common size; invalid when unknown
    bool uniformSize = false; ///< every sampled image has typicalSize
    bool gray = false; ///< every sampled image is grayscale (so its RGB channels are equal)
    int sampled = 0; ///< headers read
};

/// Reads up to `count` headers spread evenly over `paths` (no decoding).
DatasetTraits sampleDatasetTraits(const QStringList &paths, int count = 64);

/// One finding about a pipeline.
struct PipelineAdvice
{
    enum class Severity { Info, Warning, Error };
    Severity severity = Severity::Warning;
    int step = -1; ///< the step it is about; -1 for the whole pipeline
    QString message; ///< says what is wrong and what to do
    /// The pipeline with the suggested fix applied, when there is a mechanical one.
    std::optional<TransformPipeline> fix;
    QString fixLabel; ///< e.g. "Use Resize((224, 224))"
};

/// What the pipeline is for: training batches (shapes must agree) and whether randomness is
/// expected (train) or a mistake (val).
enum class PipelineRole { Train, Val };

/// Reviews a pipeline: Resize(int) without a crop (batches cannot be stacked), Normalize or
/// RandomErasing before ToTensor, no ToTensor, ToTensor twice, Normalize with the wrong number of
/// values for the channels, per-channel statistics on a grayscale dataset, no Normalize, random
/// steps in a validation pipeline, reversed (min, max) ranges, crops far larger than the images.
QList<PipelineAdvice> reviewPipeline(const TransformPipeline &pipeline, PipelineRole role,
                                     const DatasetTraits &traits);

/// Train and val pipelines that fit the dataset: for small images (≤ 64 px, like Fashion-MNIST
/// or CIFAR) a flip at the images' own size (a padded RandomCrop helps long runs only); for
/// photos torchvision's ImageNet recipe (RandomResizedCrop(224) / Resize(256) + CenterCrop(224),
/// ImageNet statistics).
struct PipelinePair
{
    TransformPipeline train;
    TransformPipeline val;
};
PipelinePair defaultPipelines(const DatasetTraits &traits);

/// Replaces (or inserts before the end) the Normalize step's mean and std with the given values,
/// rounded to 4 decimals; inserts ToTensor first when the pipeline has none.
TransformPipeline withNormalize(const TransformPipeline &pipeline, const std::vector<double> &mean,
                                const std::vector<double> &std);

/// Channel statistics of images as ToTensor sees them (values in [0, 1]), over all pixels.
struct DatasetChannelStats
{
    std::vector<double> mean;
    std::vector<double> std;
    int images = 0; ///< images read
    int failed = 0; ///< images that could not be read (skipped)
    bool cancelled = false;
};

/// Computes the per-channel mean and std over up to `maxImages` images drawn at random (seeded)
/// from paths, decoded as torchvision's loader does, on `threads` threads (0 = all cores).
/// progress(done, total) is called from worker threads; cancel is polled between images.
Result<DatasetChannelStats> computeDatasetStats(const QStringList &paths, int maxImages,
                                                uint64_t seed, int threads = 0,
                                                const std::atomic_bool *cancel = nullptr,
                                                const std::function<void(int, int)> &progress = {});

/// A pipeline found in Python source.
struct NamedPipeline
{
    QString name; ///< the variable it is assigned to
    int line = 0; ///< 1-based line of the assignment
    TransformPipeline pipeline;
    /// The assigned expression as written (comments included), for editors that keep more of
    /// it than the pipeline does (e.g. commented-out steps).
    QString expression;
};

/// Writes both pipelines as a Python module: imports, `train_transform = ...`,
/// `val_transform = ...`, and a comment naming the dataset.
QString pipelinesToPython(const TransformPipeline &train, const TransformPipeline &val,
                          const QString &datasetName = {});

/// Finds the transform pipelines assigned in Python source (`name = transforms.Compose([...])`),
/// in order. Assignments whose value is not a pipeline are skipped; a Compose that does not parse
/// is an error naming its line.
Result<QList<NamedPipeline>> pipelinesFromPython(const QString &source);

} // namespace ifs
