// exportModel(): a checkpoint's model written as TorchScript and/or ONNX with its sidecar files,
// then checked on real images against our model. See training/modelexport.h.

#include "training/modelexport.h"

#include "base/atomicfile.h"
#include "dataset/datasetlayout.h"
#include "dataset/imagefolder.h"
#include "torch/export/exportkit.h"
#include "training/evaluation.h"
#include "training/trainingdata.h"
#include "transforms/torchrng.h"
#include "transforms/transforms.h"

#include <QDir>
#include <QDirIterator>
#include <QFileInfo>
#include <QImage>

#include <algorithm>

namespace ifs {

namespace {

using tm::LoadedNet;

/// Up to `count` image paths spread over the folder (its val split when it has splits), in a
/// stable order.
QStringList verifyPaths(QString root, int count)
{
    const DatasetLayout layout = detectLayout(root);
    if (layout.hasSplits() && layout.splits.size() > 1)
        root = layout.splitRoot(layout.splits.at(1));
    QStringList found;
    QDirIterator it(root, QDir::Files, QDirIterator::Subdirectories | QDirIterator::FollowSymlinks);
    while (it.hasNext() && found.size() < 4096) {
        const QString path = it.next();
        if (hasImageExtension(QFileInfo(path).fileName().toStdString()))
            found.append(path);
    }
    found.sort();
    if (found.size() <= count)
        return found;
    QStringList picked;
    for (int i = 0; i < count; ++i)
        picked.append(found[qsizetype(i) * found.size() / count]);
    return picked;
}

/// A deterministic colourful image (when no data folder is at hand).
QImage generatedImage(int index)
{
    QImage image(72 + 8 * (index % 3), 64 + 4 * (index % 2), QImage::Format_RGB32);
    uint32_t state = 2166136261u ^ uint32_t(index);
    for (int y = 0; y < image.height(); ++y) {
        for (int x = 0; x < image.width(); ++x) {
            state = state * 1664525u + 1013904223u;
            const int noise = int(state >> 26);
            image.setPixel(x, y,
                           qRgb((x * 255 / image.width() + noise) & 255,
                                (y * 255 / image.height() + 3 * noise) & 255,
                                ((x + y) * 4 + index * 40) & 255));
        }
    }
    return image;
}

/// The check's input: the val pipeline applied to real images (or generated ones), those of
/// the first image's shape stacked as N×C×H×W.
Result<torch::Tensor> verifyInput(const LoadedNet &loaded, const ExportOptions &options,
                                  QStringList *notes)
{
    auto val = compilePipelineSource(loaded.valSource, QStringLiteral("val"));
    if (!val)
        return val.error();
    QString root = options.verifyData;
    if (root.isEmpty() && QFileInfo(loaded.dataRoot).isDir())
        root = loaded.dataRoot;
    const int count = std::max(1, options.verifyImages);
    const QStringList paths = root.isEmpty() ? QStringList() : verifyPaths(root, count);
    std::vector<torch::Tensor> images;
    for (int i = 0; i < (paths.isEmpty() ? count : int(paths.size())); ++i) {
        Result<QImage> image
            = paths.isEmpty() ? Result<QImage>(generatedImage(i)) : loadTransformInput(paths[i]);
        if (!image)
            continue;
        TorchGenerator rng(0);
        auto run = val->run(image.value(), rng);
        if (!run || !run->output.isTensor())
            return Error{QStringLiteral("the val transforms give no tensor for the check: %1")
                             .arg(run ? QStringLiteral("add ToTensor") : run.errorMessage())};
        const ImageTensor &t = run->output.tensor;
        torch::Tensor x = torch::from_blob(const_cast<float *>(t.data.data()),
                                           {t.channels, t.height, t.width}, torch::kFloat)
                              .clone();
        if (!images.empty() && x.sizes() != images.front().sizes())
            continue;
        images.push_back(x);
    }
    if (images.empty())
        return Error{QStringLiteral("no image for the check could be read in “%1”").arg(root)};
    notes->append(
        paths.isEmpty()
            ? QStringLiteral("Checked on %1 generated images (no data folder)").arg(images.size())
            : QStringLiteral("Checked on %1 images of “%2”").arg(images.size()).arg(root));
    return torch::stack(images);
}

double maxAbs(const torch::Tensor &t)
{
    return t.numel() == 0 ? 0.0 : t.abs().max().item<double>();
}

/// Compares the exported model's output with ours; a difference above tolerance × max(1,
/// |logits|) is a mismatch.
Status compareOutputs(ExportedFormat &format, const torch::Tensor &ours,
                      const torch::Tensor &theirs, double tolerance)
{
    if (theirs.sizes() != ours.sizes())
        return Error{QStringLiteral("the exported %1 model gives outputs of shape %2, ours %3")
                         .arg(exportFormatName(format.format))
                         .arg(QString::fromStdString(c10::str(theirs.sizes())),
                              QString::fromStdString(c10::str(ours.sizes())))};
    format.maxAbsDiff = maxAbs(theirs.to(torch::kDouble) - ours.to(torch::kDouble));
    format.tolerance = tolerance * std::max(1.0, maxAbs(ours));
    format.verifyImages = int(ours.size(0));
    if (!(format.maxAbsDiff <= format.tolerance))
        return Error{QStringLiteral("the exported %1 model does not reproduce ours: the largest "
                                    "difference of the logits is %2 (allowed %3)")
                         .arg(exportFormatName(format.format))
                         .arg(format.maxAbsDiff, 0, 'g', 3)
                         .arg(format.tolerance, 0, 'g', 3)};
    format.verified = true;
    return success();
}

Status writeFile(ExportResult &result, const QString &path, const QByteArray &bytes)
{
    if (Status ok = writeFileAtomically(path, bytes); !ok)
        return ok;
    result.files.append(path);
    return success();
}

struct ExportContext
{
    const ExportOptions &options;
    LoadedNet &loaded;
    const torch::Tensor &input; ///< the check's images (and the trace's example)
    const torch::Tensor &ours; ///< our logits on them
    tm::ExtraFiles extra; ///< labels.json, preprocessing.json
    ExportResult &result;
};

Status checkTorchScript(ExportContext &c, ExportedFormat &format)
{
    tm::ExtraFiles extra{{"labels.json", ""}};
    auto loaded = tm::loadTorchScript(format.modelPath, &extra);
    if (!loaded)
        return loaded.error();
    if (extra["labels.json"] != labelsJson(c.loaded.classes).toStdString())
        return Error{
            QStringLiteral("“%1” does not carry the model's labels.json").arg(format.modelPath)};
    torch::NoGradGuard noGrad;
    const torch::Tensor theirs = loaded->forward({c.input}).toTensor();
    return compareOutputs(format, c.ours, theirs, 1e-5);
}

Status checkOnnx(ExportContext &c, ExportedFormat &format)
{
    auto theirs
        = tm::runOnnxOpenCv(format.modelPath, c.input, tm::onnxNeedsBatchOne(c.loaded.arch));
    if (!theirs)
        return theirs.error();
    // A file exported with --softmax gives probabilities.
    const bool probabilities = theirs->numel() > 0
        && (theirs->sum(1) - 1.0).abs().max().item<double>() < 1e-4
        && theirs->min().item<double>() >= 0.0;
    const torch::Tensor ours = probabilities ? torch::softmax(c.ours, 1) : c.ours;
    return compareOutputs(format, ours, theirs.value(), 1e-4);
}

Status exportTorchScript(ExportContext &c)
{
    ExportedFormat format{ExportFormat::TorchScript,
                          QDir(c.options.outDir).filePath(QStringLiteral("model.pt"))};
    auto module = tm::scriptNet(*c.loaded.net, c.input, c.loaded.classes);
    if (!module)
        return module.error();
    auto bytes = tm::torchScriptBytes(module.value(), c.extra);
    if (!bytes)
        return bytes.error();
    if (Status ok = writeFile(c.result, format.modelPath, bytes.value()); !ok)
        return ok;
    if (c.options.verify) {
        if (Status ok = checkTorchScript(c, format); !ok)
            return ok;
    }
    c.result.formats.append(format);
    return success();
}

Status exportOnnx(ExportContext &c)
{
    ExportedFormat format{ExportFormat::Onnx,
                          QDir(c.options.outDir).filePath(QStringLiteral("model.onnx"))};
    std::map<std::string, std::string> metadata;
    metadata["classes"] = labelsJson(c.loaded.classes).toStdString();
    metadata["preprocessing"] = c.extra["preprocessing.json"];
    metadata["arch"] = c.loaded.arch.toStdString();
    metadata["producer"] = "ImageFolder Studio";
    auto bytes
        = tm::onnxBytes(*c.loaded.net, c.input, c.options.opset, c.options.softmax, metadata);
    if (!bytes)
        return bytes.error();
    if (Status ok = writeFile(c.result, format.modelPath, bytes.value()); !ok)
        return ok;
    if (c.options.verify) {
        if (Status ok = checkOnnx(c, format); !ok)
            return ok;
    }
    c.result.formats.append(format);
    return success();
}

Status writeSidecars(ExportContext &c)
{
    const QDir dir(c.options.outDir);
    if (Status ok = writeFile(c.result, dir.filePath(QStringLiteral("labels.json")),
                              labelsJson(c.loaded.classes));
        !ok)
        return ok;
    auto preprocessing = preprocessingJson(c.loaded.valSource, &c.result.warnings);
    if (!preprocessing)
        return preprocessing.error();
    if (Status ok = writeFile(c.result, dir.filePath(QStringLiteral("preprocessing.json")),
                              preprocessing.value());
        !ok)
        return ok;
    c.extra["labels.json"] = labelsJson(c.loaded.classes).toStdString();
    c.extra["preprocessing.json"] = preprocessing->toStdString();
    for (qsizetype i = 0; i < c.options.formats.size(); ++i) {
        const ExportFormat format = c.options.formats[i];
        const QString name = i == 0 ? QStringLiteral("predict.py")
                                    : QStringLiteral("predict_%1.py").arg(exportFormatName(format));
        if (Status ok = writeFile(c.result, dir.filePath(name), predictPyText(format)); !ok)
            return ok;
    }
    return success();
}

/// Loads the check's images and our logits on them.
Status prepare(LoadedNet &loaded, const ExportOptions &options, ExportResult &result,
               torch::Tensor &input, torch::Tensor &ours)
{
    result.arch = loaded.arch;
    result.classes = loaded.classes;
    result.notes = loaded.notes;
    auto images = verifyInput(loaded, options, &result.notes);
    if (!images)
        return images.error();
    input = images.value();
    loaded.net->to(torch::kCPU, torch::kFloat);
    tm::setChannelsLast(*loaded.net, false);
    loaded.net->eval();
    torch::NoGradGuard noGrad;
    ours = loaded.net->forward(input);
    return success();
}

Result<ExportResult> exportLoaded(LoadedNet &loaded, const ExportOptions &options,
                                  const std::function<void(const QString &)> &progress,
                                  const std::atomic_bool *cancel)
{
    ExportResult result;
    if (!QDir().mkpath(options.outDir))
        return Error{QStringLiteral("cannot create the folder “%1”").arg(options.outDir),
                     ErrorCode::Io};
    torch::Tensor input, ours;
    if (Status ok = prepare(loaded, options, result, input, ours); !ok)
        return ok.error();
    ExportContext c{options, loaded, input, ours, {}, result};
    if (Status ok = writeSidecars(c); !ok)
        return ok.error();
    for (const ExportFormat format : options.formats) {
        if (cancel && cancel->load())
            return Error{QStringLiteral("cancelled"), ErrorCode::Cancelled};
        if (progress)
            progress(QStringLiteral("Writing %1")
                         .arg(format == ExportFormat::Onnx ? QStringLiteral("ONNX")
                                                           : QStringLiteral("TorchScript")));
        const Status ok = format == ExportFormat::Onnx ? exportOnnx(c) : exportTorchScript(c);
        if (!ok)
            return ok.error();
    }
    // Model files first: what a caller shows.
    std::stable_partition(result.files.begin(), result.files.end(), [](const QString &path) {
        return path.endsWith(u".pt") || path.endsWith(u".onnx");
    });
    return result;
}

Result<ExportResult> verifyLoaded(LoadedNet &loaded, const ExportOptions &options)
{
    ExportResult result;
    torch::Tensor input, ours;
    if (Status ok = prepare(loaded, options, result, input, ours); !ok)
        return ok.error();
    ExportContext c{options, loaded, input, ours, {}, result};
    for (const ExportFormat format : options.formats) {
        const bool onnx = format == ExportFormat::Onnx;
        ExportedFormat f{
            format,
            QDir(options.outDir)
                .filePath(onnx ? QStringLiteral("model.onnx") : QStringLiteral("model.pt"))};
        if (Status ok = onnx ? checkOnnx(c, f) : checkTorchScript(c, f); !ok)
            return ok.error();
        result.files.append(f.modelPath);
        result.formats.append(f);
    }
    return result;
}

/// Loads the checkpoint and runs `work` on it; libtorch's exceptions become errors.
Result<ExportResult> withLoaded(const QString &checkpointPath, const ExportOptions &options,
                                const std::function<Result<ExportResult>(LoadedNet &)> &work)
{
    try {
        ClassifierOptions load;
        load.arch = options.arch;
        load.valTransforms = options.valTransforms;
        load.classes = options.classes;
        auto loaded = tm::loadCheckpointNet(checkpointPath, load);
        if (!loaded)
            return loaded.error();
        return work(loaded.value());
    } catch (const c10::Error &e) {
        return Error{
            QStringLiteral("export failed: %1")
                .arg(QString::fromStdString(e.what_without_backtrace()).section(u'\n', 0, 0))};
    } catch (const std::exception &e) {
        return Error{QStringLiteral("export failed: %1").arg(QString::fromUtf8(e.what()))};
    }
}

} // namespace

Result<ExportResult> exportModel(const QString &checkpointPath, const ExportOptions &options,
                                 const std::function<void(const QString &)> &progress,
                                 const std::atomic_bool *cancel)
{
    if (options.formats.isEmpty())
        return Error{QStringLiteral("choose a format to export: torchscript or onnx")};
    if (options.outDir.isEmpty())
        return Error{QStringLiteral("choose a folder for the exported files")};
    if (options.opset < 13 || options.opset > 17)
        return Error{
            QStringLiteral("ONNX opset %1 is not supported: choose 13 to 17").arg(options.opset)};
    if (progress)
        progress(QStringLiteral("Loading %1").arg(QFileInfo(checkpointPath).fileName()));
    return withLoaded(checkpointPath, options, [&](LoadedNet &loaded) {
        return exportLoaded(loaded, options, progress, cancel);
    });
}

Result<ExportResult> verifyExport(const QString &checkpointPath, const ExportOptions &options)
{
    return withLoaded(checkpointPath, options,
                      [&](LoadedNet &loaded) { return verifyLoaded(loaded, options); });
}

} // namespace ifs
