#pragma once

// What the export's files share inside ifs_torch: the TorchScript writer, the ONNX writer and
// the runners the check uses. ifs_torch only (pulls in libtorch).

#include "base/result.h"
#include "torch/torchmodels.h"

#include <QByteArray>
#include <QString>
#include <QStringList>

#include <torch/script.h>

#include <functional>
#include <map>
#include <string>

namespace ifs {
struct ClassifierOptions;
}

namespace ifs::tm {

/// A checkpoint's model on the CPU in eval mode (float32, contiguous), with what the file says
/// about it (or what ClassifierOptions supplies for a bare state dict).
struct LoadedNet
{
    std::shared_ptr<Net> net;
    QString arch;
    QStringList classes;
    QString valSource; ///< the val transform's torchvision source
    QStringList notes; ///< repaired prefixes, numbered classes, …
    QString dataRoot; ///< the training run's data folder (its config), when it says one
};
/// Loads a checkpoint as Classifier::load() does: ours, or a state dict of a known architecture
/// (prefixes repaired). Errors name the file and the reason.
Result<LoadedNet> loadCheckpointNet(const QString &checkpointPath,
                                    const ClassifierOptions &options);

/// The extra files a TorchScript archive carries (`extra/labels.json`, …).
using ExtraFiles = std::map<std::string, std::string>;

/// `net` (eval mode, CPU, float32, contiguous) as a torch::jit::Module: a tree of modules that
/// mirrors the nn::Module tree with the same tensors as parameters and buffers, a `forward`
/// traced from our forward on `example`, and the attribute `classes: List[str]`.
Result<torch::jit::Module> scriptNet(Net &net, const torch::Tensor &example,
                                     const QStringList &classes);

/// The archive torch.jit.save would write for `module`, with `extra` as its extra files.
Result<QByteArray> torchScriptBytes(const torch::jit::Module &module, const ExtraFiles &extra);

/// Loads a TorchScript archive (CPU) and fills `extra`'s keys with the files it carries.
Result<torch::jit::Module> loadTorchScript(const QString &path, ExtraFiles *extra = nullptr);

/// The ONNX file for `net` (eval mode, CPU, float32) of `arch` with `inputHeight`×`inputWidth`
/// images (the export's example; H and W stay dynamic where the graph allows), checked with
/// onnx::checker. `metadata` goes into metadata_props.
Result<QByteArray> onnxBytes(Net &net, const torch::Tensor &example, int opset, bool softmax,
                             const std::map<std::string, std::string> &metadata);

/// A loaded model's forward pass: N×3×H×W float32 in, N×classes out.
using ForwardFn = std::function<Result<torch::Tensor>(const torch::Tensor &)>;

/// Opens an ONNX file with OpenCV's dnn module; `perImage` runs the images one at a time.
Result<ForwardFn> openOnnxOpenCv(const QString &path, bool perImage);

/// The metadata_props of an ONNX file (classes, preprocessing, arch, …).
Result<std::map<std::string, std::string>> onnxMetadata(const QString &path);

/// Runs an ONNX file with OpenCV's dnn module on `input` (N×3×H×W); `perImage` runs the images
/// one at a time (OpenCV 4.6 runs squeeze-excitation blocks only at batch 1).
Result<torch::Tensor> runOnnxOpenCv(const QString &path, const torch::Tensor &input, bool perImage);

/// Whether OpenCV must run this file's graph one image at a time.
bool onnxNeedsBatchOne(const QString &arch);

} // namespace ifs::tm
