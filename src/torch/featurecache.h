#pragma once

// Backbone features computed once: with a frozen backbone and a train pipeline that draws no
// random numbers, every epoch would feed the same images through the same fixed layers, so a
// head-only fine-tuning computes them once and trains the head on them (an epoch in seconds).

#include "base/result.h"
#include "torch/torchmodels.h"

#include <QList>

#include <functional>
#include <optional>
#include <vector>

namespace ifs::tm {

/// The backbone's output (Net::backboneForward, in eval mode) for the samples of one loader, on
/// the device, with their labels. A sample the loader could not load has no row.
class FeatureCache
{
public:
    struct Options
    {
        torch::Device device = torch::kCPU;
        bool channelsLast = false;
        std::optional<torch::ScalarType> amp; ///< the autocast the training forward uses
        /// The features may take at most this many bytes; a cache that would take more is
        /// abandoned with an error that says how much it needed.
        qint64 maxBytes = 0;
        std::function<bool()> cancelled;
        std::function<void(qint64 done, qint64 total)> progress;
    };

    /// Runs every batch of `loader`'s epoch 0 through the backbone (no gradients, the whole net
    /// in eval mode, its previous mode restored). Fails with ErrorCode::Cancelled when cancelled.
    static Result<FeatureCache> build(Net &net, BatchLoader &loader, qsizetype sampleCount,
                                      const Options &options);

    /// The rows of the samples at positions [first, last) of `order` that have features: their
    /// features, labels and sample indices (count 0 when none has).
    struct Rows
    {
        torch::Tensor features;
        torch::Tensor labels;
        std::vector<int> sampleIndices;
        int count = 0;
    };
    Rows rows(const std::vector<int> &order, size_t first, size_t last) const;

    qsizetype size() const { return qsizetype(m_labels.size()); }
    qint64 bytes() const;
    QList<LoaderFailure> failures() const { return m_failures; }

private:
    torch::Tensor m_features; ///< one row per cached sample
    std::vector<int64_t> m_labels; ///< per row
    std::vector<int> m_sampleOfRow;
    std::vector<int64_t> m_rowOfSample; ///< -1: not loaded
    QList<LoaderFailure> m_failures;
    torch::Device m_device = torch::kCPU;
};

/// Evaluates the net's head on cached features of `samples` (a validation set), as
/// evaluateNet() does on images: the same predictions up to float rounding.
Result<Evaluation> evaluateFeatures(Net &net, const FeatureCache &cache,
                                    const std::vector<LoaderSample> &samples,
                                    const QStringList &classes,
                                    std::optional<torch::ScalarType> amp,
                                    const std::function<bool()> &cancelled);

} // namespace ifs::tm
