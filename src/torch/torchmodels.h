#pragma once

// libtorch side of the models and of the checkpoint bridge. Include only from ifs_torch sources
// (it pulls in <torch/torch.h>, which the precompiled header already holds).

#include "base/result.h"
#include "checkpoint/checkpointvalue.h"
#include "training/evaluation.h"
#include "transforms/batchloader.h"

#include <QList>
#include <QString>

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ifs::tm {

/// A classifier: images N×3×H×W in, logits N×classes out, in two parts: the backbone, which a
/// frozen fine-tuning leaves fixed, and the head that turns its features into logits.
struct Net : torch::nn::Module
{
    /// Everything up to the module that holds the trained head (`classifier`, `fc`): the pooled
    /// features, N×D. Deterministic in eval mode (no dropout in any backbone).
    torch::Tensor backboneForward(torch::Tensor x) { return poolForward(camForward(std::move(x))); }
    /// The backbone up to its last convolutional stage: the feature maps N×C×h×w before any
    /// pooling, which Grad-CAM weighs (torchvision's layer4, features, features[-1]).
    virtual torch::Tensor camForward(torch::Tensor x) = 0;
    /// The rest of the backbone on camForward()'s maps: the pooling (and flatten) that gives
    /// backboneForward()'s features.
    virtual torch::Tensor poolForward(torch::Tensor maps) = 0;
    /// The rest: `classifier` (with its dropout and any frozen layers before ModelArch::headPrefix)
    /// or `fc`, on the backbone's output.
    virtual torch::Tensor headForward(torch::Tensor features) = 0;
    torch::Tensor forward(torch::Tensor x) { return headForward(backboneForward(std::move(x))); }
};

struct ModelDefinition;
/// Every architecture the app trains, in modelArchitectures() order
/// (src/torch/models/modelfamilies.h lists the families).
const QList<const ModelDefinition *> &modelDefinitions();

/// Builds `arch` with torchvision's names and initialisation (seeded by torch's global
/// generator). Unknown names fail with unknownModelMessage().
Result<std::shared_ptr<Net>> createNet(const QString &arch, int numClasses);

/// The module's state_dict() as Python orders it: each module's own parameters, then its own
/// buffers, then its children, depth first.
std::vector<std::pair<std::string, torch::Tensor>> stateDictEntries(torch::nn::Module &module);

/// The module's trainable parameters in Python's `model.parameters()` order.
std::vector<std::pair<std::string, torch::Tensor>> parameterEntries(torch::nn::Module &module);

/// An OrderedDict of CPU copies with `_metadata` as model.state_dict() gives it (BatchNorm
/// version 2, other modules 1).
ckpt::Value stateDictValue(torch::nn::Module &module);

/// A CPU copy of a tensor as a checkpoint value (contiguous in its logical layout).
ckpt::Tensor toCheckpointTensor(const torch::Tensor &tensor);
/// A new CPU torch tensor with a checkpoint tensor's elements. Fails for complex and other types
/// a model does not hold.
Result<torch::Tensor> fromCheckpointTensor(const ckpt::Tensor &tensor);

/// Copies a state dict (checkpoint keys → tensors) into the module, as load_state_dict does, for
/// the keys whose shapes match; returns the keys it copied (and lists the others in
/// `mismatched`).
QStringList copyMatching(torch::nn::Module &module, const ckpt::Value &stateDict,
                         QStringList *mismatched = nullptr);

/// Converts the module's 4-D parameters and buffers to channels_last (and back with false).
void setChannelsLast(torch::nn::Module &module, bool channelsLast);

/// Appends the predictions of `logits` (N×classes) for the samples at `sampleIndices` (N) with
/// their `labels` (N, int64) to `evaluation`: softmax confidence, prediction, loss.
void appendPredictions(Evaluation &evaluation, const torch::Tensor &logits,
                       const torch::Tensor &labels, const std::vector<int> &sampleIndices,
                       const std::vector<LoaderSample> &samples);

/// Runs `net` in eval mode over one epoch of `loader` (which must not shuffle) and collects every
/// prediction: what the per-epoch validation and Classifier::evaluate() report. `cancelled` is
/// polled per batch (an error "cancelled" then); `progress(done, total)` after each batch.
Result<Evaluation> evaluateNet(Net &net, BatchLoader &loader,
                               const std::vector<LoaderSample> &samples, const QStringList &classes,
                               const torch::Device &device, bool channelsLast,
                               std::optional<torch::ScalarType> amp,
                               const std::function<bool()> &cancelled = {},
                               const std::function<void(qint64, qint64)> &progress = {});

/// A batch's images on `device` as N×C×H×W (channels_last when asked); pinned memory and a
/// non-blocking copy on CUDA.
torch::Tensor batchToDevice(const Batch &batch, const torch::Device &device, bool channelsLast);
/// A batch's labels (int64) on `device`; a copy, so that the batch can go back to its loader.
torch::Tensor batchLabels(const Batch &batch, const torch::Device &device);

/// Autocast for a scope, as `with torch.autocast(device_type, dtype)`: bf16 or fp16 on CUDA,
/// bf16 on the CPU. Restores the previous state when it ends; the outermost scope clears the
/// cache of cast weights.
class AutocastScope
{
public:
    AutocastScope(bool enabled, torch::ScalarType type, torch::DeviceType device);
    ~AutocastScope();
    AutocastScope(const AutocastScope &) = delete;
    AutocastScope &operator=(const AutocastScope &) = delete;

private:
    bool m_enabled;
    bool m_cuda;
    bool m_previous = false;
    torch::ScalarType m_previousType = torch::kBFloat16;
};

/// Whether the module's `name` (a named_modules() or named_parameters() key) belongs to the head
/// whose key prefix is `headPrefix` ("fc.", "classifier.1.").
bool isHeadName(const std::string &name, const QString &headPrefix);

/// Puts the backbone's BatchNorm and stochastic-depth layers (those outside the head) in eval
/// mode, as `module.eval()` on them does in Python: a frozen backbone computes fixed features
/// with its running statistics and every block. Dropout stays as it is (it regularises the head).
void setFrozenBackboneEval(torch::nn::Module &net, const QString &headPrefix);

} // namespace ifs::tm
