#pragma once

// The training input pipeline: decodes and transforms samples on worker threads into batches of
// float32 tensors (N × C × H × W), like torch.utils.data.DataLoader over an ImageFolder, without
// Python's per-process overheads.

#include "base/result.h"
#include "transforms/transforms.h"

#include <QList>
#include <QString>

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace ifs {

/// One sample: an image file and its class index.
struct LoaderSample
{
    QString path;
    int label = -1;
};

/// A batch of transformed images.
struct Batch
{
    int index = 0; ///< position in the epoch
    int count = 0; ///< images in the batch (fewer than asked when some failed to load)
    int channels = 0;
    int height = 0;
    int width = 0;
    std::vector<float> data; ///< count × channels × height × width, contiguous
    std::vector<int64_t> labels; ///< count
    std::vector<int> sampleIndices; ///< indices into the loader's sample list
};

/// An image the loader skipped, and why.
struct LoaderFailure
{
    QString path;
    QString message;
};

struct BatchLoaderOptions
{
    int batchSize = 64;
    /// Worker threads; 0 = all cores.
    int workers = 0;
    bool shuffle = true;
    /// Drop the last batch when it is not full (torch's drop_last).
    bool dropLast = false;
    /// Seeds the epoch's order and every sample's random transform draws: batches do not depend
    /// on thread timing, and the same seed gives the same epoch.
    uint64_t seed = 0;
    /// With shuffle, non-empty (one weight per sample): the epoch's order is drawn as
    /// torch.utils.data.WeightedRandomSampler(sampleWeights, num_samples=len(samples),
    /// replacement=True, generator=torch.Generator().manual_seed(epochOrderSeed(seed, epoch)))
    /// draws it, samples repeating. A repeated sample's transforms draw anew each time (their
    /// seeds follow the position in the epoch, not the sample).
    std::vector<double> sampleWeights;
    /// With worldSize > 0: one rank of a data-parallel run. The epoch's order is then this
    /// rank's share as torch.utils.data.DistributedSampler(num_replicas=worldSize, rank=rank,
    /// shuffle=shuffle, seed=seed) gives it after set_epoch(epoch) (training/distributed.h),
    /// and a sample's transform draws follow the sample, so every rank that holds it draws the
    /// same. Not with sampleWeights.
    int rank = 0;
    int worldSize = 0;
    /// The fused path for `[RandomResizedCrop, RandomHorizontalFlip?, ToTensor, Normalize?]` on
    /// JPEGs decodes only the crop's rows and columns (exact), and with fastDecode at 1/2, 1/4 or
    /// 1/8 scale when the crop stays at least as large as the output (pixels then differ
    /// slightly from torchvision's, as from any other JPEG decoder). Off: every image goes
    /// through the exact engine.
    bool fusedPath = true;
    bool fastDecode = true;
    /// Batches prepared ahead of the consumer; 0 = two per worker. Fewer when that many
    /// batches would not fit maxBytes.
    int prefetch = 0;
    /// The memory the loader may use (bytes); 0 = defaultTransformMemoryBound(), a fraction of
    /// the machine's. One batch may take half of it; each worker's transform runs get a share
    /// (CompiledPipeline::setMemoryBound: a quarter divided by the workers, at least 256 MiB, at
    /// most half): an image whose transforms would need more is skipped and listed, before its
    /// output is allocated.
    qint64 maxBytes = 0;
};

/// The seed of the generator that draws epoch `epoch`'s (0-based) order from the loader's
/// `seed`: what Python's sampler generator needs to give the same order.
uint64_t epochOrderSeed(uint64_t seed, int epoch);

/// torch.utils.data.DistributedSampler(n, num_replicas=worldSize, rank=rank, shuffle=shuffle,
/// seed=seed, drop_last=dropLast) after set_epoch(epoch): randperm(n) from a generator seeded
/// with seed + epoch (0…n−1 without shuffle), padded with its own first indices (or truncated
/// with dropLast) to a multiple of worldSize, every worldSize-th index from `rank`.
std::vector<int> distributedSamplerIndices(qsizetype n, int rank, int worldSize, bool shuffle,
                                           uint64_t seed, int epoch, bool dropLast = false);

/// Produces the batches of one epoch at a time, in order, from a pool of worker threads.
///
/// Every batch holds samples of one shape, decided before the first epoch: the pipeline's fixed
/// output size when it has one (a crop, Resize((h, w))), else the shape most of up to 32 images
/// spread over the dataset give; never the shape of whichever image comes first. Images that
/// fail to load are skipped, counted and listed (failures()), and so are images whose tensor
/// has another shape than the batches' or whose transforms would exceed the memory bound (a
/// single huge photo among thousands), each with the file named and what to do. When the
/// images disagree on the shape (more than one in ten of those tried), or one batch would not
/// fit the memory bound, no batch is made: status() says why. No exception leaves a worker: a
/// failure to allocate is a skipped image. Thread-safe: next() from one consumer thread,
/// cancel() from any.
class BatchLoader
{
public:
    BatchLoader(std::vector<LoaderSample> samples, CompiledPipeline pipeline,
                BatchLoaderOptions options = {});
    ~BatchLoader();
    BatchLoader(const BatchLoader &) = delete;
    BatchLoader &operator=(const BatchLoader &) = delete;

    /// Starts epoch `epoch` (its order is a permutation seeded by seed and epoch when shuffling,
    /// or weighted draws with sampleWeights),
    /// stopping any epoch in progress. With `firstBatch`, the epoch's first batches are skipped
    /// without being loaded (a resume inside an epoch): next() starts with batch `firstBatch`.
    void startEpoch(int epoch, int firstBatch = 0);
    /// The order of epoch `epoch`'s samples (indices into the sample list): batch k holds
    /// positions k × batchSize() up to the next batch's (fewer for a last batch that is kept).
    std::vector<int> epochOrder(int epoch) const;
    int batchSize() const;
    /// The next batch of the epoch, waiting for it; nullopt when the epoch is done or cancelled.
    std::optional<Batch> next();
    /// Hands a batch's buffers back for reuse (saves page faults on big batches).
    void recycle(Batch &&batch);
    /// Stops the workers soon; next() then returns nullopt.
    void cancel();

    /// Whether batches can be made; when not, why (images of different sizes, a batch too big
    /// for the memory bound), and next() gives nothing.
    Status status() const;
    int batchesPerEpoch() const;
    qsizetype sampleCount() const;
    /// Every image skipped so far (all epochs).
    QList<LoaderFailure> failures() const;
    /// Whether the fused decode-crop-normalise path is in use, and a sentence saying which path.
    bool usesFusedPath() const;
    QString pathDescription() const;

private:
    struct Impl;
    std::unique_ptr<Impl> d;
};

} // namespace ifs
