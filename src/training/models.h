#pragma once

// The classifiers the app trains: torchvision's architectures with torchvision's parameter and
// buffer names (so state dicts load either way with strict=True), and a small CNN for quick runs
// that ships with its Python definition. This header is torch-free; the modules themselves live
// in models.cpp (ifs_torch).

#include "base/result.h"
#include "checkpoint/checkpointrepair.h"

#include <QList>
#include <QSize>
#include <QString>

namespace ifs {

struct ModelArch
{
    QString name; ///< "resnet18": the name in checkpoints ('arch') and on the command line
    QString title; ///< "ResNet-18"
    QString description; ///< one line for the UI: size and what it is good for
    /// The key prefix of the classifier head, replaced when the class count differs: "fc.",
    /// "classifier.1.".
    QString headPrefix;
    /// The Python expression that builds it, with {N} for the class count:
    /// "torchvision.models.resnet18(num_classes={N})", "SmallCNN(num_classes={N})".
    QString pythonConstructor;
    qint64 parameters10 = 0; ///< parameter count with 10 classes (for the UI)
    /// How many times smaller than the input its last feature maps are: 32 for torchvision's
    /// ImageNet models, 4 for the small CNN.
    int outputStride = 1;
    /// Python source that defines the class pythonConstructor names (our SmallCNN); empty for
    /// torchvision's models.
    QString pythonDefinition = {};
};

/// Every architecture we build, family by family in the order of src/torch/models/modelfamilies.h
/// (one file per family in src/torch/models/): small_cnn, the ResNets, the MobileNets, ….
const QList<ModelArch> &modelArchitectures();
/// nullptr when unknown.
const ModelArch *findModelArch(const QString &name);
/// "unknown model “x”: choose one of small_cnn, resnet18, …"
QString unknownModelMessage(const QString &name);

/// Advice when `input` (the pipeline's output, width × height) leaves the model's last stage
/// with 1×1 maps or less — resnet18 on 28×28 images: what it costs and the remedy (upscale in
/// both pipelines). Empty when the input is large enough for the model.
QString inputSizeNote(const ModelArch &arch, QSize input);

/// The keys, shapes and dtypes of `arch`'s state_dict() with `numClasses` outputs, in
/// state_dict() order: a target for loadReport() / proposeRepair(). Builds the model (ifs_torch).
Result<ckpt::TargetSpec> modelTarget(const QString &arch, int numClasses);

/// The class count a state dict's head says (`fc.weight` rows, `classifier.1.weight` rows);
/// -1 when it has no such key.
int headClassCount(const ckpt::Value &stateDict, const QString &arch);

/// Writes a freshly initialised `arch` (after `torch.manual_seed(seed)`) as a state dict, as
/// `torch.save(model.state_dict(), path)` would: to start a Python run from the same weights, or
/// to check the initialisation.
Status exportInitialWeights(const QString &arch, int numClasses, uint64_t seed,
                            const QString &path);

/// Python source that defines the small CNN (`class SmallCNN(nn.Module)`), equivalent to ours
/// key by key and op by op; torchvision's models need no source.
QString smallCnnPythonSource();

/// A Python snippet that rebuilds the model of a checkpoint and loads its weights:
/// imports, the SmallCNN class when needed, the constructor, torch.load + load_state_dict.
QString modelPythonSnippet(const QString &arch, int numClasses, const QString &checkpointPath);

} // namespace ifs
