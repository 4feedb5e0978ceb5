#include "transforms/batchloader.h"

#include "base/filenames.h"
#include "base/memorybudget.h"
#include "image/imageprobe.h"
#include "image/jpegregion.h"
#include "image/pilops.h"
#include "transforms/torchrng.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QThread>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
#include <new>
#include <numeric>
#include <thread>

namespace ifs {

namespace {

uint64_t splitMix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/// The seed of one sample's transform draws in one epoch.
uint64_t sampleSeed(uint64_t seed, int epoch, int sample)
{
    return splitMix(splitMix(seed ^ (uint64_t(uint32_t(epoch)) << 32)) ^ uint64_t(sample));
}

/// The per-channel lookup of ToTensor + Normalize for 8-bit values: the same float32
/// operations as the engine (v / 255, then (x - mean) / std), so the values are identical.
struct ChannelLut
{
    float value[3][256];

    ChannelLut(const std::vector<float> &mean, const std::vector<float> &std)
    {
        for (int c = 0; c < 3; ++c) {
            const bool normalize = !mean.empty() && !std.empty();
            const float m = normalize ? mean[mean.size() == 1 ? 0 : size_t(c)] : 0.0f;
            const float s = normalize ? std[std.size() == 1 ? 0 : size_t(c)] : 1.0f;
            for (int v = 0; v < 256; ++v) {
                const float x = float(v) / 255.0f;
                value[c][v] = normalize ? (x - m) / s : x;
            }
        }
    }
};

/// The shape of one sample's tensor, C × H × W.
struct SampleShape
{
    int channels = 0;
    int height = 0;
    int width = 0;

    auto operator<=>(const SampleShape &) const = default;
    size_t elements() const { return size_t(channels) * size_t(height) * size_t(width); }
    qint64 bytes() const { return qint64(elements() * sizeof(float)); }
    QString text() const
    {
        return QStringLiteral("[%1, %2, %3]").arg(channels).arg(height).arg(width);
    }
};

/// Images the batch shape is decided from when the pipeline's output size follows the input.
constexpr int kProbeSamples = 32;

/// "cat/001.jpg": enough of a path to find the file in a dataset.
QString shortName(const QString &path)
{
    const QFileInfo info(path);
    return info.dir().dirName() + u'/' + info.fileName();
}

/// Why a sample's tensor is not batched: its shape differs from the batches'.
QString shapeMismatch(const SampleShape &shape, const SampleShape &batch)
{
    return QStringLiteral("gives a tensor of %1 but the batch holds %2: the pipeline does not "
                          "make every image the same size. It is skipped: add "
                          "Resize((%3, %4)) (or a crop to that size) to the transforms to use it")
        .arg(shape.text(), batch.text())
        .arg(batch.height)
        .arg(batch.width);
}

/// Why no batch can be made: the images tried give tensors of these shapes (each with how many
/// and the first image that gave it).
QString raggedShapes(const std::map<SampleShape, std::pair<int, int>> &seen, int tried,
                     const std::vector<LoaderSample> &samples, int batchSize)
{
    std::vector<std::pair<SampleShape, std::pair<int, int>>> byCount(seen.begin(), seen.end());
    std::stable_sort(byCount.begin(), byCount.end(),
                     [](const auto &a, const auto &b) { return a.second.first > b.second.first; });
    QStringList parts;
    for (size_t i = 0; i < byCount.size() && i < 4; ++i) {
        const auto &[shape, found] = byCount[i];
        parts << QStringLiteral("%1 for %2 (e.g. “%3”)")
                     .arg(shape.text())
                     .arg(found.first)
                     .arg(shortName(samples[size_t(found.second)].path));
    }
    if (byCount.size() > 4)
        parts << QStringLiteral("…");
    const SampleShape &common = byCount.front().first;
    return QStringLiteral("the transforms give tensors of different sizes, %1 of the %2 images "
                          "tried, and a batch of %3 needs them all the same size (torch's "
                          "default collate stops with \"stack expects each tensor to be equal "
                          "size\"): end the transforms with a fixed size, e.g. "
                          "Resize((%4, %5)) or a crop such as CenterCrop(%6)")
        .arg(parts.join(QStringLiteral(", ")))
        .arg(tried)
        .arg(batchSize)
        .arg(common.height)
        .arg(common.width)
        .arg(std::min(common.height, common.width));
}

} // namespace

uint64_t epochOrderSeed(uint64_t seed, int epoch)
{
    return sampleSeed(seed, epoch, -1);
}

std::vector<int> distributedSamplerIndices(qsizetype n, int rank, int worldSize, bool shuffle,
                                           uint64_t seed, int epoch, bool dropLast)
{
    std::vector<int> indices(static_cast<size_t>(n));
    if (shuffle) {
        TorchGenerator rng(seed + uint64_t(int64_t(epoch)));
        const std::vector<int64_t> perm = rng.randperm(int64_t(n));
        for (size_t i = 0; i < perm.size(); ++i)
            indices[i] = int(perm[i]);
    } else {
        std::iota(indices.begin(), indices.end(), 0);
    }
    const qsizetype w = worldSize;
    // num_samples = ceil((n - w) / w) with drop_last and a remainder, else ceil(n / w).
    const qsizetype perRank = dropLast && n % w ? (n - w + w - 1) / w : (n + w - 1) / w;
    const size_t total = size_t(perRank * w);
    if (!dropLast && n > 0) {
        // Padding repeats the order from its start (as often as it takes when pad > n).
        for (size_t i = 0; indices.size() < total; ++i)
            indices.push_back(indices[i % size_t(n)]);
    } else {
        indices.resize(std::min(indices.size(), total));
    }
    std::vector<int> mine;
    mine.reserve(size_t(perRank));
    for (size_t i = size_t(rank); i < indices.size(); i += size_t(w))
        mine.push_back(indices[i]);
    return mine;
}

struct BatchLoader::Impl
{
    std::vector<LoaderSample> samples;
    CompiledPipeline pipeline;
    BatchLoaderOptions options;
    std::optional<ResizedCropPlan> plan;
    std::optional<ChannelLut> lut;
    int workerCount = 1;
    int prefetch = 2;
    qint64 maxBytes = 0;
    /// Every batch's sample shape, when decided up front (see decideBatchShape()).
    std::optional<SampleShape> batchShape;
    /// Why no batch can be made; empty when they can.
    QString batchError;

    mutable std::mutex mutex;
    std::condition_variable workAvailable;
    std::condition_variable batchReady;
    std::vector<std::thread> threads;
    bool stopping = false;
    std::atomic_bool cancelled{false};

    // The epoch in progress.
    uint64_t generation = 0;
    int epoch = 0;
    /// Shared with the workers: startEpoch() makes a new one rather than changing it.
    std::shared_ptr<const std::vector<int>> order;
    int batchCount = 0;
    int assigned = 0;
    int delivered = 0;
    std::map<int, Batch> ready;
    std::vector<std::vector<float>> spareBuffers;
    QList<LoaderFailure> failures;

    void workerLoop();
    /// Whether the order is drawn with sampleWeights (samples repeat).
    bool weighted() const
    {
        return options.shuffle && !options.sampleWeights.empty()
            && options.sampleWeights.size() == samples.size();
    }
    Batch build(int batchIndex, int epochNumber, const std::vector<int> &epochOrder);
    /// Adds one sample to the batch, or lists it as a failure. Never throws.
    /// `drawKey` seeds its transform draws with the epoch: the sample's index, or its position
    /// in the epoch where samples repeat (weighted sampling).
    void addSample(Batch &batch, int sampleIndex, int drawKey, int epochNumber,
                   std::vector<float> &one);
    /// Transforms one sample: into `direct` when given (the batch's shape is `expected`, known),
    /// else into `out`. `shape` returns the sample's shape. Returns an error message on failure;
    /// may throw std::bad_alloc and other std::exception (addSample() catches them).
    QString processSample(int sampleIndex, int drawKey, int epochNumber,
                          const SampleShape *expected, float *direct, std::vector<float> &out,
                          SampleShape &shape);
    bool fused(const QByteArray &bytes, TorchGenerator &rng, float *out);
    void addFailure(int sampleIndex, const QString &message);

    /// Decides batchShape (or batchError) before the first epoch, and fits prefetch to the memory.
    void decideBatchShape();
    /// The shape most of up to kProbeSamples images spread over the dataset give; nullopt when
    /// none loads, or (batchError set) when they disagree.
    std::optional<SampleShape> probeShape();
    /// Whether a batch of samples of `shape` fits the memory bound; sets `why` when not.
    bool batchFits(const SampleShape &shape, QString *why) const;
};

void BatchLoader::Impl::workerLoop()
{
    std::unique_lock lock(mutex);
    for (;;) {
        workAvailable.wait(lock, [this] {
            return stopping
                || (!cancelled && assigned < batchCount && assigned - delivered < prefetch);
        });
        if (stopping)
            return;
        const int index = assigned++;
        const uint64_t myGeneration = generation;
        const int myEpoch = epoch;
        const std::shared_ptr<const std::vector<int>> myOrder = order;
        lock.unlock();
        Batch batch;
        try {
            batch = build(index, myEpoch, *myOrder);
        } catch (...) {
            // addSample() catches per sample, so only the batch's own buffer can fail here,
            // before any sample went in. An empty batch keeps next() from waiting for it
            // forever, and its samples are listed rather than silently lost.
            batch = Batch{};
            batch.index = index;
            const size_t first = size_t(index) * size_t(options.batchSize);
            const size_t last = std::min(first + size_t(options.batchSize), myOrder->size());
            for (size_t k = first; k < last; ++k)
                addFailure((*myOrder)[k],
                           QStringLiteral("not enough memory for its batch. It is skipped: add "
                                          "a Resize to the transforms, or use a smaller batch "
                                          "size"));
        }
        lock.lock();
        if (generation == myGeneration) {
            ready.emplace(index, std::move(batch));
            batchReady.notify_all();
        }
    }
}

Batch BatchLoader::Impl::build(int batchIndex, int epochNumber, const std::vector<int> &epochOrder)
{
    Batch batch;
    batch.index = batchIndex;
    const int first = batchIndex * options.batchSize;
    const int last = std::min<int>(first + options.batchSize, int(epochOrder.size()));
    {
        const std::lock_guard lock(mutex);
        if (!spareBuffers.empty()) {
            batch.data = std::move(spareBuffers.back());
            spareBuffers.pop_back();
        }
    }
    if (batchShape) {
        // The shape is known up front (and fits the memory bound): samples are written straight
        // into the batch.
        batch.channels = batchShape->channels;
        batch.height = batchShape->height;
        batch.width = batchShape->width;
        batch.data.resize(size_t(options.batchSize) * batchShape->elements());
    }
    std::vector<float> one;
    for (int k = first; k < last && !cancelled; ++k)
        addSample(batch, epochOrder[size_t(k)], weighted() ? k : epochOrder[size_t(k)], epochNumber,
                  one);
    batch.data.resize(size_t(batch.count) * batch.channels * batch.height * batch.width);
    return batch;
}

void BatchLoader::Impl::addSample(Batch &batch, int sampleIndex, int drawKey, int epochNumber,
                                  std::vector<float> &one)
{
    QString error;
    try {
        const SampleShape current{batch.channels, batch.height, batch.width};
        const bool known = batch.count > 0 || batchShape;
        const size_t offset = batch.count == 0 ? 0 : size_t(batch.count) * current.elements();
        float *direct = batchShape ? batch.data.data() + offset : nullptr;
        SampleShape shape;
        error = processSample(sampleIndex, drawKey, epochNumber, known ? &current : nullptr, direct,
                              one, shape);
        if (error.isEmpty() && !known && !batchFits(shape, &error))
            error = QStringLiteral("gives a tensor of %1: %2").arg(shape.text(), error);
        if (error.isEmpty() && !known) {
            // No shape was decided up front (a batch of one, or no image loaded when trying):
            // this sample's sets the batch's, within the memory bound.
            batch.channels = shape.channels;
            batch.height = shape.height;
            batch.width = shape.width;
            batch.data.resize(size_t(options.batchSize) * shape.elements());
        }
        if (error.isEmpty()) {
            if (!direct) {
                std::copy(one.begin(), one.begin() + qsizetype(shape.elements()),
                          batch.data.begin() + qsizetype(size_t(batch.count) * shape.elements()));
                one.clear();
            }
            batch.labels.push_back(samples[size_t(sampleIndex)].label);
            batch.sampleIndices.push_back(sampleIndex);
            ++batch.count;
            return;
        }
    } catch (const std::bad_alloc &) {
        error = QStringLiteral("not enough memory to load and transform it. It is skipped: "
                               "downscale it, or add a Resize to the transforms");
    } catch (const std::exception &e) {
        error = QStringLiteral("cannot be loaded: %1").arg(QString::fromLocal8Bit(e.what()));
    }
    one.clear();
    addFailure(sampleIndex, error);
}

void BatchLoader::Impl::addFailure(int sampleIndex, const QString &message)
{
    try {
        const std::lock_guard lock(mutex);
        failures.append({samples[size_t(sampleIndex)].path, message});
    } catch (...) {
        // Out of memory even for the message: the sample is still left out of the batch.
    }
}

QString BatchLoader::Impl::processSample(int sampleIndex, int drawKey, int epochNumber,
                                         const SampleShape *expected, float *direct,
                                         std::vector<float> &out, SampleShape &shape)
{
    const LoaderSample &sample = samples[size_t(sampleIndex)];
    const uint64_t seed = sampleSeed(options.seed, epochNumber, drawKey);
    if (plan && direct) {
        FileNameFile file(sample.path); // by its bytes (base/filenames.h)
        if (file.open(QIODevice::ReadOnly)) {
            const QByteArray bytes = file.readAll();
            TorchGenerator rng(seed);
            if (fused(bytes, rng, direct)) {
                shape = {3, plan->outHeight, plan->outWidth};
                return {};
            }
        }
        // Not a plain JPEG, or broken: the exact path says what is wrong.
    }
    const Result<QImage> image = loadTransformInput(sample.path);
    if (!image)
        return image.errorMessage();
    TorchGenerator rng(seed);
    Result<TransformRun> run = pipeline.run(image.value(), rng);
    if (!run) {
        QString message
            = QStringLiteral("“%1”: %2").arg(QFileInfo(sample.path).fileName(), run.errorMessage());
        if (run.error().code == ErrorCode::OutOfMemory)
            message += QStringLiteral(". It is skipped: downscale it, or add a Resize before that "
                                      "step so that every image is made small first");
        return message;
    }
    if (!run->output.isTensor())
        return QStringLiteral("the pipeline returns a PIL image, not a tensor: add ToTensor()");
    ImageTensor &t = run->output.tensor;
    shape = {t.channels, t.height, t.width};
    if (expected && shape != *expected)
        return shapeMismatch(shape, *expected);
    if (direct)
        std::copy(t.data.begin(), t.data.end(), direct);
    else
        out = std::move(t.data);
    return {};
}

bool BatchLoader::Impl::fused(const QByteArray &bytes, TorchGenerator &rng, float *out)
{
    const std::optional<JpegInfo> info = readJpegInfo(bytes);
    if (!info || !info->rgbCompatible || info->width <= 0 || info->height <= 0)
        return false;
    // Beyond PIL's decompression-bomb limit torchvision cannot open it: the exact path says so.
    if (int64_t(info->width) * info->height > 2 * kPilMaxImagePixels)
        return false;
    const ResizedCropPlan &p = *plan;
    // The draws, in the engine's order: the crop, then the flip.
    const CropBox box = sampleResizedCrop(info->width, info->height, p.scaleLo, p.scaleHi,
                                          p.ratioLo, p.ratioHi, rng);
    const bool flip = p.flipP && float(rng.rand()) < float(*p.flipP);
    int denom = 1;
    if (options.fastDecode)
        for (int d : {8, 4, 2})
            if (box.width / d >= p.outWidth && box.height / d >= p.outHeight) {
                denom = d;
                break;
            }
    QRect region(box.left, box.top, box.width, box.height);
    QRectF sub;
    if (denom > 1) {
        const int x0 = box.left / denom, y0 = box.top / denom;
        const int x1 = std::min(jpegScaledSize(info->width, denom),
                                jpegScaledSize(box.left + box.width, denom));
        const int y1 = std::min(jpegScaledSize(info->height, denom),
                                jpegScaledSize(box.top + box.height, denom));
        region = QRect(x0, y0, x1 - x0, y1 - y0);
        sub = QRectF(double(box.left) / denom - x0, double(box.top) / denom - y0,
                     double(box.width) / denom, double(box.height) / denom);
    }
    const Result<QImage> decoded = decodeJpegRegion(bytes, denom, region);
    if (!decoded)
        return false;
    const QImage resized
        = pil::resize(decoded.value(), QSize(p.outWidth, p.outHeight), p.filter, sub);
    if (resized.isNull())
        return false;
    // Flip, ToTensor and Normalize in one pass into the C × H × W output.
    const int w = p.outWidth, h = p.outHeight;
    const size_t plane = size_t(w) * h;
    for (int y = 0; y < h; ++y) {
        const uchar *src = resized.constScanLine(y);
        float *r = out + size_t(y) * w;
        float *g = r + plane;
        float *b = g + plane;
        for (int x = 0; x < w; ++x) {
            const uchar *px = src + 3 * (flip ? w - 1 - x : x);
            r[x] = lut->value[0][px[0]];
            g[x] = lut->value[1][px[1]];
            b[x] = lut->value[2][px[2]];
        }
    }
    return true;
}

void BatchLoader::Impl::decideBatchShape()
{
    if (plan) {
        batchShape = SampleShape{3, plan->outHeight, plan->outWidth};
    } else {
        // The loader gives the pipeline RGB images of any size.
        const DataShape out = pipeline.outputShape(DataShape{3, -1, -1, false, true});
        if (!out.tensor) {
            batchError = QStringLiteral("the transforms give a PIL image, not a tensor: add "
                                        "transforms.ToTensor() (and Normalize after it)");
            return;
        }
        if (out.exact && out.sizeKnown())
            batchShape = SampleShape{out.channels, int(out.height), int(out.width)};
        else if (options.batchSize > 1)
            batchShape = probeShape();
    }
    if (!batchError.isEmpty() || !batchShape)
        return;
    if (QString why; !batchFits(*batchShape, &why)) {
        batchError
            = QStringLiteral("the transforms give tensors of %1: %2").arg(batchShape->text(), why);
        return;
    }
    // Batches in flight share the other half of the bound.
    const qint64 batchBytes = qint64(options.batchSize) * batchShape->bytes();
    if (batchBytes > 0)
        prefetch = int(std::clamp<qint64>(maxBytes / 2 / batchBytes, 1, prefetch));
}

std::optional<SampleShape> BatchLoader::Impl::probeShape()
{
    const int n = int(samples.size());
    const int count = std::min(n, kProbeSamples);
    std::map<SampleShape, std::pair<int, int>> seen; // shape → (images, first image)
    int tried = 0;
    for (int k = 0; k < count; ++k) {
        // Evenly spread over the (class-ordered) list, as epoch 0 would transform them.
        const int index = std::min(n - 1, int((double(k) + 0.5) * double(n) / count));
        std::vector<float> out;
        SampleShape shape;
        try {
            if (!processSample(index, index, 0, nullptr, nullptr, out, shape).isEmpty())
                continue; // listed when an epoch meets it
        } catch (const std::exception &) {
            continue;
        }
        ++tried;
        ++seen.try_emplace(shape, 0, index).first->second.first;
    }
    if (tried == 0)
        return std::nullopt;
    const auto common
        = std::max_element(seen.begin(), seen.end(), [](const auto &a, const auto &b) {
              return a.second.first < b.second.first;
          });
    // One odd image in ten is skipped and listed; more means the sizes follow the images.
    if (tried - common->second.first > std::max(1, tried / 10)) {
        batchError = raggedShapes(seen, tried, samples, options.batchSize);
        return std::nullopt;
    }
    return common->first;
}

bool BatchLoader::Impl::batchFits(const SampleShape &shape, QString *why) const
{
    const qint64 batchBytes = qint64(options.batchSize) * shape.bytes();
    if (batchBytes <= maxBytes / 2)
        return true;
    *why = QStringLiteral("a batch of %1 of them would take %2, more than the %3 one batch may "
                          "use here. Add a Resize to the transforms (or use a smaller batch size)")
               .arg(options.batchSize)
               .arg(formatBytes(batchBytes), formatBytes(maxBytes / 2));
    return false;
}

BatchLoader::BatchLoader(std::vector<LoaderSample> samples, CompiledPipeline pipeline,
                         BatchLoaderOptions options)
    : d(std::make_unique<Impl>())
{
    d->samples = std::move(samples);
    d->pipeline = std::move(pipeline);
    d->options = options;
    d->options.batchSize = std::max(1, options.batchSize);
    if (options.fusedPath) {
        d->plan = d->pipeline.resizedCropPlan();
        if (d->plan)
            d->lut.emplace(d->plan->mean, d->plan->std);
    }
    d->workerCount
        = options.workers > 0 ? options.workers : std::max(1, QThread::idealThreadCount());
    d->prefetch = options.prefetch > 0 ? options.prefetch : 2 * d->workerCount;
    d->maxBytes = options.maxBytes > 0 ? options.maxBytes : defaultTransformMemoryBound();
    // Each worker's transforms get their share: a huge image is refused before its tensor is
    // allocated, and skipped.
    d->pipeline.setMemoryBound(std::min(
        d->maxBytes / 2, std::max(d->maxBytes / (4 * qint64(d->workerCount)), qint64(256) << 20)));
    d->decideBatchShape();
    for (int i = 0; i < d->workerCount; ++i)
        d->threads.emplace_back([impl = d.get()] { impl->workerLoop(); });
}

BatchLoader::~BatchLoader()
{
    {
        const std::lock_guard lock(d->mutex);
        d->stopping = true;
        d->cancelled = true;
    }
    d->workAvailable.notify_all();
    for (std::thread &t : d->threads)
        t.join();
}

void BatchLoader::startEpoch(int epoch, int firstBatch)
{
    std::unique_lock lock(d->mutex);
    ++d->generation;
    d->cancelled = false;
    d->epoch = epoch;
    for (auto &[index, batch] : d->ready)
        d->spareBuffers.push_back(std::move(batch.data));
    d->ready.clear();
    d->order = std::make_shared<const std::vector<int>>(epochOrder(epoch));
    const int n = int(d->order->size());
    const int b = d->options.batchSize;
    d->batchCount = !d->batchError.isEmpty() ? 0 : d->options.dropLast ? n / b : (n + b - 1) / b;
    d->assigned = std::clamp(firstBatch, 0, d->batchCount);
    d->delivered = d->assigned;
    lock.unlock();
    d->workAvailable.notify_all();
}

std::vector<int> BatchLoader::epochOrder(int epoch) const
{
    std::vector<int> order(d->samples.size());
    std::iota(order.begin(), order.end(), 0);
    if (d->options.worldSize > 0) {
        return distributedSamplerIndices(qsizetype(order.size()), d->options.rank,
                                         d->options.worldSize, d->options.shuffle, d->options.seed,
                                         epoch);
    } else if (d->weighted()) {
        // WeightedRandomSampler: torch.multinomial with replacement, seeded per epoch.
        TorchGenerator rng(epochOrderSeed(d->options.seed, epoch));
        const std::vector<int64_t> drawn
            = rng.multinomialWithReplacement(d->options.sampleWeights, int64_t(order.size()));
        std::copy(drawn.begin(), drawn.end(), order.begin());
    } else if (d->options.shuffle) {
        // A Fisher-Yates shuffle driven by torch's generator, seeded per epoch.
        TorchGenerator rng(sampleSeed(d->options.seed, epoch, -1));
        for (size_t i = order.size(); i > 1; --i)
            std::swap(order[i - 1], order[size_t(rng.random64() % i)]);
    }
    return order;
}

int BatchLoader::batchSize() const
{
    return d->options.batchSize;
}

std::optional<Batch> BatchLoader::next()
{
    std::unique_lock lock(d->mutex);
    for (;;) {
        if (d->cancelled || d->delivered >= d->batchCount)
            return std::nullopt;
        const auto it = d->ready.find(d->delivered);
        if (it != d->ready.end()) {
            Batch batch = std::move(it->second);
            d->ready.erase(it);
            ++d->delivered;
            lock.unlock();
            d->workAvailable.notify_all();
            return batch;
        }
        d->batchReady.wait(lock);
    }
}

void BatchLoader::recycle(Batch &&batch)
{
    const std::lock_guard lock(d->mutex);
    if (d->spareBuffers.size() < size_t(d->prefetch + 2) && batch.data.capacity() > 0)
        d->spareBuffers.push_back(std::move(batch.data));
}

void BatchLoader::cancel()
{
    {
        const std::lock_guard lock(d->mutex);
        d->cancelled = true;
    }
    d->batchReady.notify_all();
    d->workAvailable.notify_all();
}

Status BatchLoader::status() const
{
    if (d->batchError.isEmpty())
        return success();
    return Error{d->batchError};
}

int BatchLoader::batchesPerEpoch() const
{
    const int n = d->options.worldSize > 0 ? int(epochOrder(0).size()) : int(d->samples.size());
    const int b = d->options.batchSize;
    return d->options.dropLast ? n / b : (n + b - 1) / b;
}

qsizetype BatchLoader::sampleCount() const
{
    return qsizetype(d->samples.size());
}

QList<LoaderFailure> BatchLoader::failures() const
{
    const std::lock_guard lock(d->mutex);
    return d->failures;
}

bool BatchLoader::usesFusedPath() const
{
    return d->plan.has_value();
}

QString BatchLoader::pathDescription() const
{
    const QString workers = d->workerCount == 1 ? QStringLiteral("1 worker")
                                                : QStringLiteral("%1 workers").arg(d->workerCount);
    if (!d->plan)
        return QStringLiteral("exact engine per image (%1)").arg(workers);
    return QStringLiteral("fused JPEG crop-decode + resize + normalise (%1, %2)")
        .arg(d->options.fastDecode ? QStringLiteral("reduced-scale decoding on")
                                   : QStringLiteral("exact"),
             workers);
}

} // namespace ifs
