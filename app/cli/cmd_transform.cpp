#include "commands.h"

#include "base/jsonwriter.h"
#include "checkpoint/checkpointvalue.h"
#include "checkpoint/checkpointwriter.h"
#include "transforms/torchrng.h"
#include "transforms/transformadvice.h"
#include "transforms/transforms.h"

#include <QCommandLineParser>
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSaveFile>

#include <variant>

namespace ifs::cli {

namespace {

/// The pipeline from --pipeline (code) or --pipeline-file (a Python file, --name picks one).
Result<TransformPipeline> pipelineFrom(const QCommandLineParser &parser, const QString &codeOption,
                                       const QString &fileOption, const QString &nameOption)
{
    if (parser.isSet(codeOption) == parser.isSet(fileOption))
        return Error{QStringLiteral("give the pipeline with either --pipeline CODE or "
                                    "--pipeline-file FILE")};
    if (parser.isSet(codeOption)) {
        Result<TransformPipeline> pipeline = parseTransforms(parser.value(codeOption));
        if (!pipeline)
            return Error{QStringLiteral("--pipeline: ") + pipeline.errorMessage()};
        return pipeline;
    }
    const QString path = parser.value(fileOption);
    QFile file(path);
    if (!file.open(QIODevice::ReadOnly))
        return Error{QStringLiteral("cannot read “%1”: %2").arg(path, file.errorString())};
    const QString source = QString::fromUtf8(file.readAll());
    Result<QList<NamedPipeline>> found = pipelinesFromPython(source);
    if (!found)
        return Error{QStringLiteral("“%1”: %2").arg(path, found.errorMessage())};
    QStringList names;
    for (const NamedPipeline &named : found.value())
        names << named.name;
    if (!parser.isSet(nameOption)) {
        if (found->size() == 1)
            return found->constFirst().pipeline;
        return Error{QStringLiteral("“%1” has %2 pipelines (%3): choose one with --name")
                         .arg(path)
                         .arg(found->size())
                         .arg(names.join(QStringLiteral(", ")))};
    }
    for (const NamedPipeline &named : found.value())
        if (named.name == parser.value(nameOption))
            return named.pipeline;
    return Error{QStringLiteral("“%1” has no pipeline named “%2” (it has %3)")
                     .arg(path, parser.value(nameOption), names.join(QStringLiteral(", ")))};
}

Status writePng(const QImage &image, const QString &path)
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return Error{QStringLiteral("cannot write “%1”: %2").arg(path, file.errorString())};
    if (!image.save(&file, "PNG")) {
        file.cancelWriting();
        return Error{QStringLiteral("cannot encode “%1” as PNG").arg(path)};
    }
    if (!file.commit())
        return Error{QStringLiteral("cannot write “%1”: %2").arg(path, file.errorString())};
    return success();
}

/// The image to save for a step's output: tensors are shown denormalised when a Normalize ran.
QImage displayImage(const TransformData &data, const CompiledPipeline &pipeline, bool normalized)
{
    if (!data.isTensor())
        return data.image;
    return normalized
        ? tensorToImage(data.tensor, pipeline.normalizeMean(), pipeline.normalizeStd())
        : tensorToImage(data.tensor);
}

/// The `transform` command line, read and checked.
struct TransformArgs
{
    QString imagePath;
    QString out; ///< -o: a .pt, .pth or .png file; empty when not given
    QString outSuffix; ///< out's suffix in lower case
    uint64_t seed = TorchGenerator::kDefaultSeed;
    bool exif = false;
    bool steps = false; ///< --steps DIR: write every step's output
    QString stepsDir;
    bool json = false;
    TransformPipeline pipeline;
};

/// Reads the command line: the arguments, or the exit code when there is nothing to run (help
/// shown, or a mistake reported).
std::variant<TransformArgs, int> readTransformArgs(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Runs a torchvision transform pipeline on one image, with torchvision 0.14's semantics "
        "and PIL's pixels.\nRandom transforms draw their parameters as torch does: --seed S gives "
        "what `torch.manual_seed(S); pipeline(img)` gives in Python (without --seed: the seed of a "
        "new torch.Generator(), 67280421310721).\n"
        "OUT.pt is the output tensor in torch.save's format (torch.load(OUT, weights_only=True) "
        "returns it); OUT.png is the output image, denormalised when Normalize ran."));
    const QCommandLineOption help = helpOption();
    const QCommandLineOption pipelineOption(
        QStringLiteral("pipeline"),
        QStringLiteral("The pipeline as Python code, e.g. \"T.Compose([T.Resize(256), "
                       "T.CenterCrop(224), T.ToTensor()])\"."),
        QStringLiteral("CODE"));
    const QCommandLineOption fileOption(
        QStringLiteral("pipeline-file"),
        QStringLiteral("A Python file with `name = transforms.Compose([...])` assignments."),
        QStringLiteral("FILE"));
    const QCommandLineOption nameOption(
        QStringLiteral("name"),
        QStringLiteral("Which pipeline of --pipeline-file to use (e.g. train_transform)."),
        QStringLiteral("VAR"));
    const QCommandLineOption seedOption(QStringLiteral("seed"),
                                        QStringLiteral("torch.manual_seed() before the pipeline."),
                                        QStringLiteral("S"));
    const QCommandLineOption exifOption(
        QStringLiteral("exif"),
        QStringLiteral("Turn the image upright by its EXIF orientation first (torchvision's "
                       "loader does not)."));
    const QCommandLineOption outOption({QStringLiteral("o"), QStringLiteral("output")},
                                       QStringLiteral("Where to write the result: .pt or .png."),
                                       QStringLiteral("OUT"));
    const QCommandLineOption stepsOption(
        QStringLiteral("steps"),
        QStringLiteral("Also write every step's output as DIR/NN-<transform>.png."),
        QStringLiteral("DIR"));
    const QCommandLineOption jsonOption(QStringLiteral("json"),
                                        QStringLiteral("Print what each step did as JSON."));
    for (const QCommandLineOption &option :
         {help, pipelineOption, fileOption, nameOption, seedOption, exifOption, outOption,
          stepsOption, jsonOption})
        parser.addOption(option);
    parser.addPositionalArgument(QStringLiteral("IMAGE"), QStringLiteral("The input image."));
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    if (parser.positionalArguments().size() != 1) {
        printError(QStringLiteral("transform needs exactly one IMAGE. Try `ifstudio-cli transform "
                                  "--help`."));
        return kExitUsage;
    }
    if (!parser.isSet(outOption) && !parser.isSet(jsonOption) && !parser.isSet(stepsOption)) {
        printError(QStringLiteral("say where the result goes: -o OUT.pt, -o OUT.png (or --json, "
                                  "--steps DIR)."));
        return kExitUsage;
    }
    TransformArgs read;
    read.out = parser.value(outOption);
    read.outSuffix = QFileInfo(read.out).suffix().toLower();
    if (!read.out.isEmpty() && read.outSuffix != u"pt" && read.outSuffix != u"pth"
        && read.outSuffix != u"png") {
        printError(
            QStringLiteral("-o “%1”: the output must end in .pt, .pth or .png").arg(read.out));
        return kExitUsage;
    }
    if (parser.isSet(seedOption)) {
        bool ok = false;
        const QString text = parser.value(seedOption);
        read.seed = text.startsWith(u'-') ? uint64_t(text.toLongLong(&ok)) : text.toULongLong(&ok);
        if (!ok) {
            printError(QStringLiteral("--seed needs an integer, not “%1”").arg(text));
            return kExitUsage;
        }
    }
    Result<TransformPipeline> pipeline
        = pipelineFrom(parser, pipelineOption.names().constFirst(), fileOption.names().constFirst(),
                       nameOption.names().constFirst());
    if (!pipeline) {
        printError(pipeline.errorMessage());
        return kExitUsage;
    }
    read.pipeline = std::move(pipeline).value();
    read.imagePath = parser.positionalArguments().constFirst();
    read.exif = parser.isSet(exifOption);
    read.steps = parser.isSet(stepsOption);
    read.stepsDir = parser.value(stepsOption);
    read.json = parser.isSet(jsonOption);
    return read;
}

/// --steps DIR: the input as 00-input.png and each step's output as NN-<transform>.png.
Status writeStepImages(const QString &dir, const QImage &input, const TransformRun &run,
                       const CompiledPipeline &pipeline)
{
    if (!QDir().mkpath(dir))
        return Error{QStringLiteral("cannot create the folder “%1”").arg(dir)};
    if (Status s = writePng(input, dir + QStringLiteral("/00-input.png")); !s)
        return s;
    bool normalized = false;
    for (const StepTrace &step : run.steps) {
        normalized = normalized || step.name == u"Normalize";
        const QImage shown = displayImage(step.output, pipeline, normalized);
        if (shown.isNull())
            continue;
        const QString name = QStringLiteral("%1/%2-%3.png")
                                 .arg(dir)
                                 .arg(step.step + 1, 2, 10, QLatin1Char('0'))
                                 .arg(step.name);
        if (Status s = writePng(shown, name); !s)
            return s;
    }
    return success();
}

/// -o OUT: the result as PNG (denormalised) or as a tensor in torch.save's format.
Status writeResult(const TransformArgs &args, const TransformData &result,
                   const CompiledPipeline &pipeline)
{
    if (args.outSuffix == u"png") {
        const bool normalized = !pipeline.normalizeMean().empty() && result.isTensor();
        const QImage shown = displayImage(result, pipeline, normalized);
        if (shown.isNull())
            return Error{QStringLiteral("a %1-channel tensor cannot be written as PNG: use .pt")
                             .arg(result.channels())};
        return writePng(shown, args.out);
    }
    // A uint8 H × W × C tensor for a PIL image result, as np.array(img) would give; the float32
    // C × H × W tensor itself after ToTensor.
    ckpt::Tensor tensor;
    if (result.isTensor()) {
        tensor = ckpt::Tensor::fromFloats(
            std::span<const float>(result.tensor.data),
            {result.tensor.channels, result.tensor.height, result.tensor.width});
    } else {
        const QImage &img = result.image;
        const int c = result.channels();
        QByteArray bytes;
        bytes.reserve(qsizetype(img.width()) * img.height() * c);
        for (int y = 0; y < img.height(); ++y)
            bytes.append(reinterpret_cast<const char *>(img.constScanLine(y)),
                         qsizetype(img.width()) * c);
        tensor = ckpt::Tensor::fromBytes(ckpt::DType::UInt8, std::move(bytes),
                                         {img.height(), img.width(), c});
    }
    return ckpt::writeCheckpoint(args.out, ckpt::Value(tensor));
}

/// The output's description for --json: its kind, shape and (tensors) channel statistics.
void writeOutputJson(JsonWriter &json, const TransformData &result)
{
    json.beginObject();
    if (result.isTensor()) {
        json.key("kind").value("tensor");
        json.key("dtype").value("float32");
        json.key("shape")
            .beginArray()
            .value(result.tensor.channels)
            .value(result.tensor.height)
            .value(result.tensor.width)
            .endArray();
        const ChannelStats stats = tensorStats(result.tensor);
        for (const auto &[name, values] :
             {std::pair{"mean", stats.mean}, std::pair{"std", stats.std},
              std::pair{"min", stats.min}, std::pair{"max", stats.max}}) {
            json.key(name).beginArray();
            for (double v : values)
                json.value(v);
            json.endArray();
        }
    } else {
        json.key("kind").value("image");
        json.key("mode").value(result.channels() == 1 ? "L" : "RGB");
        json.key("size")
            .beginArray()
            .value(result.image.width())
            .value(result.image.height())
            .endArray();
    }
    json.endObject();
}

/// --json: the input, the seed, the pipeline, what each step did and the output, on stdout.
void printRunJson(const TransformArgs &args, QSize inputSize, const CompiledPipeline &pipeline,
                  const TransformRun &run)
{
    JsonWriter json;
    json.beginObject();
    json.key("image").value(args.imagePath);
    json.key("input_size")
        .beginArray()
        .value(inputSize.width())
        .value(inputSize.height())
        .endArray();
    json.key("seed").value(int64_t(args.seed));
    json.key("pipeline").value(toTorchvisionSource(pipeline.pipeline()));
    json.key("steps").beginArray();
    for (const StepTrace &step : run.steps) {
        json.beginObject();
        json.key("name").value(step.name);
        json.key("applied").value(step.applied);
        json.key("summary").value(step.summary);
        json.key("output_size")
            .beginArray()
            .value(step.outputSize.width())
            .value(step.outputSize.height())
            .endArray();
        json.endObject();
    }
    json.endArray();
    json.key("output");
    writeOutputJson(json, run.output);
    json.endObject();
    QByteArray bytes = json.take();
    bytes.append('\n');
    writeOut(bytes);
}

/// Without --json: one line per step and one for the result.
void printRunText(const TransformArgs &args, const TransformRun &run)
{
    for (const StepTrace &step : run.steps)
        printOut(QStringLiteral("%1. %2: %3").arg(step.step + 1).arg(step.name, step.summary));
    printOut(QStringLiteral("→ %1%2").arg(
        run.output.describe(),
        args.out.isEmpty() ? QString() : QStringLiteral(", written to ") + args.out));
}

} // namespace

int runTransform(const QStringList &args)
{
    std::variant<TransformArgs, int> read = readTransformArgs(args);
    if (const int *code = std::get_if<int>(&read))
        return *code;
    const TransformArgs &a = std::get<TransformArgs>(read);
    Result<CompiledPipeline> compiled = CompiledPipeline::compile(a.pipeline);
    if (!compiled) {
        printError(compiled.errorMessage());
        return kExitUsage;
    }
    LoadOptions loadOptions;
    loadOptions.applyExifOrientation = a.exif;
    Result<QImage> image = loadTransformInput(a.imagePath, loadOptions);
    if (!image) {
        printError(image.errorMessage());
        return kExitFailure;
    }
    TorchGenerator rng(a.seed);
    Result<TransformRun> run = compiled->run(image.value(), rng, a.steps);
    if (!run) {
        printError(run.errorMessage());
        return kExitFailure;
    }
    Status written = a.steps
        ? writeStepImages(a.stepsDir, image.value(), run.value(), compiled.value())
        : success();
    if (written && !a.out.isEmpty())
        written = writeResult(a, run->output, compiled.value());
    if (!written) {
        printError(written.errorMessage());
        return kExitFailure;
    }
    if (a.json)
        printRunJson(a, image->size(), compiled.value(), run.value());
    else
        printRunText(a, run.value());
    return kExitOk;
}

} // namespace ifs::cli
