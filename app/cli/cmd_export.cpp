// ifstudio-cli export: a checkpoint's model as TorchScript and/or ONNX with labels.json,
// preprocessing.json and predict.py, checked on real images against the trained model.
#include "commands.h"

#include "base/jsonwriter.h"
#include "torch/runtime.h"
#include "training/modelexport.h"

#include <QCommandLineParser>

namespace ifs::cli {

int runExport(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Export a checkpoint's model so that it runs without ImageFolder Studio: TorchScript "
        "(model.pt for torch.jit.load or libtorch) and/or ONNX (model.onnx, BatchNorm folded), "
        "with labels.json, preprocessing.json and a predict.py example. The exported files are "
        "then run on a batch of images and compared with the trained model."));
    parser.addOption(helpOption());
    parser.addOption({QStringLiteral("format"),
                      QStringLiteral("torchscript, onnx or both (default torchscript)"),
                      QStringLiteral("FMT")});
    parser.addOption({{QStringLiteral("o"), QStringLiteral("out")},
                      QStringLiteral("the folder to write"),
                      QStringLiteral("DIR")});
    parser.addOption({QStringLiteral("opset"), QStringLiteral("ONNX opset, 13 to 17 (default 13)"),
                      QStringLiteral("N")});
    parser.addOption(
        {QStringLiteral("softmax"), QStringLiteral("ONNX: output probabilities, not logits")});
    parser.addOption({QStringLiteral("no-verify"),
                      QStringLiteral("do not run the exported files against the model")});
    parser.addOption({QStringLiteral("verify-data"),
                      QStringLiteral("images for the check (default: the run's data folder)"),
                      QStringLiteral("ROOT")});
    parser.addOption({QStringLiteral("model"),
                      QStringLiteral("the architecture, for checkpoints that do not say it"),
                      QStringLiteral("NAME")});
    parser.addOption(
        {QStringLiteral("val-transforms"),
         QStringLiteral("torchvision source of the val pipeline, for checkpoints without one"),
         QStringLiteral("CODE")});
    parser.addOption({QStringLiteral("json"), QStringLiteral("print JSON")});
    parser.addPositionalArgument(QStringLiteral("CKPT"), QStringLiteral("the checkpoint"));
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    const QStringList positional = parser.positionalArguments();
    if (positional.size() != 1) {
        printError(QStringLiteral("give one checkpoint to export"));
        return kExitUsage;
    }
    if (!parser.isSet(QStringLiteral("out"))) {
        printError(QStringLiteral("give the folder to write with -o DIR"));
        return kExitUsage;
    }
    ExportOptions options;
    options.outDir = parser.value(QStringLiteral("out"));
    const QString format = parser.value(QStringLiteral("format"));
    if (format == u"onnx")
        options.formats = {ExportFormat::Onnx};
    else if (format == u"both")
        options.formats = {ExportFormat::TorchScript, ExportFormat::Onnx};
    else if (!format.isEmpty() && format != u"torchscript") {
        printError(
            QStringLiteral("--format must be torchscript, onnx or both, not “%1”").arg(format));
        return kExitUsage;
    }
    if (parser.isSet(QStringLiteral("opset"))) {
        bool ok = false;
        options.opset = parser.value(QStringLiteral("opset")).toInt(&ok);
        if (!ok || options.opset < 13 || options.opset > 17) {
            printError(QStringLiteral("--opset must be 13 to 17"));
            return kExitUsage;
        }
    }
    options.softmax = parser.isSet(QStringLiteral("softmax"));
    options.verify = !parser.isSet(QStringLiteral("no-verify"));
    options.verifyData = parser.value(QStringLiteral("verify-data"));
    options.arch = parser.value(QStringLiteral("model"));
    options.valTransforms = parser.value(QStringLiteral("val-transforms"));
    configureRuntime(requestedThreads());
    const bool json = parser.isSet(QStringLiteral("json"));
    auto result = exportModel(positional.first(), options, [json](const QString &stage) {
        if (!json)
            printErr(stage);
    });
    if (!result) {
        printError(result.errorMessage());
        return kExitFailure;
    }
    const ExportResult &r = result.value();
    if (json) {
        JsonWriter out(2);
        out.beginObject();
        out.key("arch").value(r.arch);
        out.key("files").beginArray();
        for (const QString &file : r.files)
            out.value(file);
        out.endArray();
        out.key("formats").beginArray();
        for (const ExportedFormat &f : r.formats) {
            out.beginObject();
            out.key("format").value(exportFormatName(f.format));
            out.key("path").value(f.modelPath);
            out.key("verified").value(f.verified);
            out.key("max_abs_diff").value(f.maxAbsDiff);
            out.key("tolerance").value(f.tolerance);
            out.key("images").value(f.verifyImages);
            out.endObject();
        }
        out.endArray();
        out.key("warnings").beginArray();
        for (const QString &w : r.warnings)
            out.value(w);
        out.endArray();
        out.endObject();
        writeOut(out.take() + '\n');
        return kExitOk;
    }
    for (const QString &note : r.notes)
        printErr(QStringLiteral("  %1").arg(note));
    for (const QString &warning : r.warnings)
        printErr(QStringLiteral("warning: %1").arg(warning));
    for (const ExportedFormat &f : r.formats) {
        printOut(f.verified ? QStringLiteral("%1: %2 (checked on %3 images: max |Δ| %4)")
                                  .arg(exportFormatName(f.format), f.modelPath)
                                  .arg(f.verifyImages)
                                  .arg(f.maxAbsDiff, 0, 'g', 3)
                            : QStringLiteral("%1: %2 (not checked)")
                                  .arg(exportFormatName(f.format), f.modelPath));
    }
    for (const QString &file : r.files) {
        if (!file.endsWith(u".pt") && !file.endsWith(u".onnx"))
            printOut(QStringLiteral("  %1").arg(file));
    }
    return kExitOk;
}

} // namespace ifs::cli
