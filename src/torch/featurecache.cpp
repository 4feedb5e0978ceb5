#include "torch/featurecache.h"

#include "base/memorybudget.h"

#include <QStringLiteral>

#include <algorithm>

namespace ifs::tm {

namespace {

/// Puts the net in eval mode for the scope and restores the mode it had.
class EvalModeScope
{
public:
    explicit EvalModeScope(Net &net)
        : m_net(net)
        , m_training(net.is_training())
    {
        m_net.eval();
    }
    ~EvalModeScope()
    {
        if (m_training)
            m_net.train();
    }
    EvalModeScope(const EvalModeScope &) = delete;
    EvalModeScope &operator=(const EvalModeScope &) = delete;

private:
    Net &m_net;
    bool m_training;
};

Error cancelledError()
{
    return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
}

} // namespace

Result<FeatureCache> FeatureCache::build(Net &net, BatchLoader &loader, qsizetype sampleCount,
                                         const Options &options)
{
    FeatureCache cache;
    cache.m_device = options.device;
    cache.m_rowOfSample.assign(size_t(sampleCount), -1);
    std::vector<torch::Tensor> parts;
    qint64 bytes = 0;
    qint64 done = 0;
    {
        const EvalModeScope evalMode(net);
        torch::NoGradGuard noGrad;
        loader.startEpoch(0);
        while (std::optional<Batch> batch = loader.next()) {
            if (options.cancelled && options.cancelled())
                return cancelledError();
            if (batch->count > 0) {
                torch::Tensor features;
                {
                    AutocastScope autocast(options.amp.has_value(),
                                           options.amp.value_or(torch::kBFloat16),
                                           options.device.type());
                    features = net.backboneForward(
                        batchToDevice(*batch, options.device, options.channelsLast));
                }
                // Plain float32 rows in the standard layout, whatever autocast and the memory
                // format made of them: the head's input, as in an epoch without the cache.
                features = features.to(torch::kFloat).contiguous();
                bytes += features.numel() * qint64(sizeof(float));
                if (options.maxBytes > 0 && bytes > options.maxBytes) {
                    const qint64 perSample = bytes / std::max<qint64>(1, done + batch->count);
                    return Error{QStringLiteral("the features of %1 images would take about %2, "
                                                "more than the %3 set aside for them")
                                     .arg(sampleCount)
                                     .arg(formatBytes(perSample * sampleCount),
                                          formatBytes(options.maxBytes))};
                }
                for (int i = 0; i < batch->count; ++i) {
                    const int sample = batch->sampleIndices[size_t(i)];
                    cache.m_rowOfSample[size_t(sample)] = qint64(cache.m_sampleOfRow.size());
                    cache.m_sampleOfRow.push_back(sample);
                    cache.m_labels.push_back(batch->labels[size_t(i)]);
                }
                parts.push_back(std::move(features));
                done += batch->count;
            }
            loader.recycle(std::move(*batch));
            if (options.progress)
                options.progress(done, qint64(sampleCount));
        }
    }
    if (options.cancelled && options.cancelled())
        return cancelledError();
    cache.m_failures = loader.failures();
    if (!parts.empty())
        cache.m_features = torch::cat(parts);
    return cache;
}

FeatureCache::Rows FeatureCache::rows(const std::vector<int> &order, size_t first,
                                      size_t last) const
{
    Rows out;
    std::vector<int64_t> rowIndices;
    last = std::min(last, order.size());
    for (size_t k = first; k < last; ++k) {
        const int sample = order[k];
        const int64_t row = sample >= 0 && size_t(sample) < m_rowOfSample.size()
            ? m_rowOfSample[size_t(sample)]
            : -1;
        if (row < 0)
            continue;
        rowIndices.push_back(row);
        out.sampleIndices.push_back(sample);
    }
    out.count = int(rowIndices.size());
    if (out.count == 0)
        return out;
    std::vector<int64_t> labels;
    labels.reserve(rowIndices.size());
    for (const int64_t row : rowIndices)
        labels.push_back(m_labels[size_t(row)]);
    const torch::Tensor index = torch::tensor(rowIndices, torch::kLong);
    out.features = m_features.index_select(0, index.to(m_device));
    out.labels = torch::tensor(labels, torch::kLong).to(m_device);
    return out;
}

qint64 FeatureCache::bytes() const
{
    return m_features.defined() ? m_features.numel() * qint64(m_features.element_size()) : 0;
}

Result<Evaluation> evaluateFeatures(Net &net, const FeatureCache &cache,
                                    const std::vector<LoaderSample> &samples,
                                    const QStringList &classes,
                                    std::optional<torch::ScalarType> amp,
                                    const std::function<bool()> &cancelled)
{
    Evaluation evaluation;
    evaluation.classes = classes;
    evaluation.predictions.reserve(cache.size());
    const EvalModeScope evalMode(net);
    torch::NoGradGuard noGrad;
    std::vector<int> order(samples.size());
    std::iota(order.begin(), order.end(), 0);
    constexpr size_t kBatch = 256;
    for (size_t first = 0; first < order.size(); first += kBatch) {
        if (cancelled && cancelled())
            return cancelledError();
        const FeatureCache::Rows rows = cache.rows(order, first, first + kBatch);
        if (rows.count == 0)
            continue;
        torch::Tensor logits;
        {
            AutocastScope autocast(amp.has_value(), amp.value_or(torch::kBFloat16),
                                   rows.features.device().type());
            logits = net.headForward(rows.features);
        }
        appendPredictions(evaluation, logits, rows.labels, rows.sampleIndices, samples);
    }
    evaluation.failures = cache.failures();
    evaluation.computeSummary();
    return evaluation;
}

} // namespace ifs::tm
