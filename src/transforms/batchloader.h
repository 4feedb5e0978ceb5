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
    /// The fused path for `[RandomResizedCrop, RandomHorizontalFlip?, ToTensor, Normalize?]` on
    /// JPEGs decodes only the crop's rows and columns (exact), and with fastDecode at 1/2, 1/4 or
    /// 1/8 scale when the crop stays at least as large as the output (pixels then differ
    /// slightly from torchvision's, as from any other JPEG decoder). Off: every image goes
    /// through the exact engine.
    bool fusedPath = true;
    bool fastDecode = true;
    /// Batches prepared ahead of the consumer; 0 = two per worker.
    int prefetch = 0;
};

/// Produces the batches of one epoch at a time, in order, from a pool of worker threads.
/// Images that fail to load are skipped, counted and listed (failures()); a sample whose output
/// shape differs from the batch's is skipped the same way. Thread-safe: next() from one consumer
/// thread, cancel() from any.
class BatchLoader
{
public:
    BatchLoader(std::vector<LoaderSample> samples, CompiledPipeline pipeline,
                BatchLoaderOptions options = {});
    ~BatchLoader();
    BatchLoader(const BatchLoader &) = delete;
    BatchLoader &operator=(const BatchLoader &) = delete;

    /// Starts epoch `epoch` (its order is a permutation seeded by seed and epoch when shuffling),
    /// stopping any epoch in progress. With `firstBatch`, the epoch's first batches are skipped
    /// without being loaded (a resume inside an epoch): next() starts with batch `firstBatch`.
    void startEpoch(int epoch, int firstBatch = 0);
    /// The next batch of the epoch, waiting for it; nullopt when the epoch is done or cancelled.
    std::optional<Batch> next();
    /// Hands a batch's buffers back for reuse (saves page faults on big batches).
    void recycle(Batch &&batch);
    /// Stops the workers soon; next() then returns nullopt.
    void cancel();

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
