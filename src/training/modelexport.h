#pragma once

// Exporting a trained classifier so that it runs without us: TorchScript (`model.pt`, which
// torch.jit.load and libtorch run with no torchvision and none of our code) and ONNX
// (`model.onnx`, written with the ONNX protobuf classes, BatchNorm folded), each with the sidecar
// files `labels.json`, `preprocessing.json` and a `predict.py` example. After writing, a batch of
// real images runs through the exported file and through our model, and a mismatch is an error.
// Torch-free header: the sidecars are built here (ifs_core), exportModel() is in ifs_torch
// (src/torch/export/).

#include "base/result.h"
#include "transforms/transformspec.h"

#include <QByteArray>
#include <QList>
#include <QString>
#include <QStringList>

#include <atomic>
#include <functional>

namespace ifs {

enum class ExportFormat { TorchScript, Onnx };
/// "torchscript", "onnx".
QString exportFormatName(ExportFormat format);

/// What to export and how.
struct ExportOptions
{
    QList<ExportFormat> formats{ExportFormat::TorchScript};
    QString outDir; ///< created when missing; existing files of the same names are replaced
    int opset = 13; ///< ONNX opset: 13 (default) to 17
    bool softmax = false; ///< ONNX: append Softmax, output `probabilities` instead of `logits`
    bool verify = true; ///< run a batch of images through the exported files and compare
    int verifyImages = 8; ///< how many images the check uses
    /// Images for the check: an ImageFolder root (or any folder of images). Empty: the training
    /// run's data folder (the checkpoint's config), else generated images.
    QString verifyData;
    /// For checkpoints that do not say them (a bare state dict from a Python script), as
    /// ClassifierOptions: the architecture, the val transform's source and the class names.
    QString arch;
    QString valTransforms;
    QStringList classes;
};

/// One exported format: the files written and how closely they reproduce our model.
struct ExportedFormat
{
    ExportFormat format = ExportFormat::TorchScript;
    QString modelPath;
    bool verified = false;
    double maxAbsDiff = 0.0; ///< largest |exported − ours| over the check's logits
    double tolerance = 0.0; ///< what the check allowed
    int verifyImages = 0;
};

struct ExportResult
{
    QString arch;
    QStringList classes;
    QStringList files; ///< every file written, model files first
    QList<ExportedFormat> formats;
    QStringList warnings; ///< preprocessing that the sidecar cannot express, …
    QStringList notes; ///< facts about the load and the check
};

/// Exports the checkpoint's model as `options` asks. `progress(text)` names each stage;
/// `cancel` is polled between stages and images. Errors name the file and the reason; a check
/// whose largest difference exceeds the tolerance fails with both numbers. Implemented in
/// ifs_torch (src/torch/export/modelexport_torch.cpp).
Result<ExportResult> exportModel(const QString &checkpointPath, const ExportOptions &options,
                                 const std::function<void(const QString &)> &progress = {},
                                 const std::atomic_bool *cancel = nullptr);

/// Runs exportModel()'s check again on the files in `options.outDir` (model.pt and/or
/// model.onnx, as `options.formats` says) and writes nothing: a file that no longer reproduces
/// the checkpoint's model (edited, or exported from other weights) fails as the export would.
Result<ExportResult> verifyExport(const QString &checkpointPath, const ExportOptions &options);

/// `{"classes": [...], "class_to_idx": {...}}` (indented).
QByteArray labelsJson(const QStringList &classes);

/// preprocessing.json for the val pipeline `source`: the steps a program must apply to an image
/// to get the model's input (`convert("RGB")`, then resize, center_crop, grayscale, to_tensor,
/// normalize in the pipeline's order), the layout and dtype, and the torchvision source. Steps it
/// cannot express (random ops, Pad, GaussianBlur, …) are named in `warnings` (and in the file).
Result<QByteArray> preprocessingJson(const QString &source, QStringList *warnings = nullptr);

/// A short `predict.py` that classifies images with the exported files only (torch.jit.load or
/// onnxruntime, PIL, labels.json, preprocessing.json).
QByteArray predictPyText(ExportFormat format);

} // namespace ifs
