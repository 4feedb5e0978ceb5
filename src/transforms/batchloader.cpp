#include "transforms/batchloader.h"

#include "base/filenames.h"
#include "image/jpegregion.h"
#include "image/pilops.h"
#include "transforms/torchrng.h"

#include <QFile>
#include <QFileInfo>
#include <QThread>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <map>
#include <mutex>
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

} // namespace

struct BatchLoader::Impl
{
    std::vector<LoaderSample> samples;
    CompiledPipeline pipeline;
    BatchLoaderOptions options;
    std::optional<ResizedCropPlan> plan;
    std::optional<ChannelLut> lut;
    int workerCount = 1;
    int prefetch = 2;

    mutable std::mutex mutex;
    std::condition_variable workAvailable;
    std::condition_variable batchReady;
    std::vector<std::thread> threads;
    bool stopping = false;
    std::atomic_bool cancelled{false};

    // The epoch in progress.
    uint64_t generation = 0;
    int epoch = 0;
    std::vector<int> order;
    int batchCount = 0;
    int assigned = 0;
    int delivered = 0;
    std::map<int, Batch> ready;
    std::vector<std::vector<float>> spareBuffers;
    QList<LoaderFailure> failures;

    void workerLoop();
    Batch build(int batchIndex, int epochNumber, const std::vector<int> &epochOrder);
    /// Transforms one sample: into `direct` when given (the fused path's fixed shape), else
    /// into `out`. channels/height/width hold the batch's shape (0 before the first sample) and
    /// return the sample's. Returns an error message on failure.
    QString processSample(int sampleIndex, int epochNumber, float *direct, std::vector<float> &out,
                          int &channels, int &height, int &width);
    bool fused(const QByteArray &bytes, TorchGenerator &rng, float *out);
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
        const std::vector<int> myOrder = order; // a copy: startEpoch may replace it meanwhile
        lock.unlock();
        Batch batch = build(index, myEpoch, myOrder);
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
    if (plan) {
        // The shape is known up front: samples are written straight into the batch.
        batch.channels = 3;
        batch.height = plan->outHeight;
        batch.width = plan->outWidth;
        batch.data.resize(size_t(options.batchSize) * 3 * plan->outHeight * plan->outWidth);
    }
    std::vector<float> one;
    for (int k = first; k < last; ++k) {
        if (cancelled)
            break;
        const int sampleIndex = epochOrder[size_t(k)];
        const size_t offset = batch.count == 0
            ? 0
            : size_t(batch.count) * batch.channels * batch.height * batch.width;
        float *direct = plan ? batch.data.data() + offset : nullptr;
        int c = batch.channels, h = batch.height, w = batch.width;
        QString error = processSample(sampleIndex, epochNumber, direct, one, c, h, w);
        if (error.isEmpty() && (batch.count > 0 || plan)
            && (c != batch.channels || h != batch.height || w != batch.width))
            error = QStringLiteral("gives a tensor of another shape than the batch's");
        if (!error.isEmpty()) {
            const std::lock_guard lock(mutex);
            failures.append({samples[size_t(sampleIndex)].path, error});
            continue;
        }
        if (batch.count == 0 && !plan) {
            batch.channels = c;
            batch.height = h;
            batch.width = w;
            batch.data.resize(size_t(options.batchSize) * c * h * w);
        }
        if (!one.empty()) {
            const size_t plane = size_t(c) * h * w;
            std::copy(one.begin(), one.begin() + qsizetype(plane),
                      batch.data.begin() + qsizetype(size_t(batch.count) * plane));
            one.clear();
        }
        batch.labels.push_back(samples[size_t(sampleIndex)].label);
        batch.sampleIndices.push_back(sampleIndex);
        ++batch.count;
    }
    batch.data.resize(size_t(batch.count) * batch.channels * batch.height * batch.width);
    return batch;
}

QString BatchLoader::Impl::processSample(int sampleIndex, int epochNumber, float *direct,
                                         std::vector<float> &out, int &channels, int &height,
                                         int &width)
{
    const LoaderSample &sample = samples[size_t(sampleIndex)];
    const uint64_t seed = sampleSeed(options.seed, epochNumber, sampleIndex);
    if (plan) {
        FileNameFile file(sample.path); // by its bytes (base/filenames.h)
        if (file.open(QIODevice::ReadOnly)) {
            const QByteArray bytes = file.readAll();
            TorchGenerator rng(seed);
            if (fused(bytes, rng, direct)) {
                channels = 3;
                height = plan->outHeight;
                width = plan->outWidth;
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
    if (!run)
        return QStringLiteral("“%1”: %2")
            .arg(QFileInfo(sample.path).fileName(), run.errorMessage());
    if (!run->output.isTensor())
        return QStringLiteral("the pipeline returns a PIL image, not a tensor: add ToTensor()");
    ImageTensor &t = run->output.tensor;
    if (channels && (t.channels != channels || t.height != height || t.width != width))
        return QStringLiteral("gives a tensor of [%1, %2, %3] but the batch holds [%4, %5, %6]: "
                              "the pipeline does not make every image the same size")
            .arg(t.channels)
            .arg(t.height)
            .arg(t.width)
            .arg(channels)
            .arg(height)
            .arg(width);
    channels = t.channels;
    height = t.height;
    width = t.width;
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
    d->order.resize(d->samples.size());
    std::iota(d->order.begin(), d->order.end(), 0);
    if (d->options.shuffle) {
        // A Fisher-Yates shuffle driven by torch's generator, seeded per epoch.
        TorchGenerator rng(sampleSeed(d->options.seed, epoch, -1));
        for (size_t i = d->order.size(); i > 1; --i)
            std::swap(d->order[i - 1], d->order[size_t(rng.random64() % i)]);
    }
    const int n = int(d->order.size());
    const int b = d->options.batchSize;
    d->batchCount = d->options.dropLast ? n / b : (n + b - 1) / b;
    d->assigned = std::clamp(firstBatch, 0, d->batchCount);
    d->delivered = d->assigned;
    lock.unlock();
    d->workAvailable.notify_all();
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

int BatchLoader::batchesPerEpoch() const
{
    const int n = int(d->samples.size());
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
