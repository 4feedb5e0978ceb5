// ifstudio-cli mislabeled: images whose labels a trained model doubts, worst first
// (training/mislabel.h).
#include "commands.h"

#include "base/jsonwriter.h"
#include "torch/runtime.h"
#include "training/evaluation.h"
#include "training/mislabel.h"
#include "training/training.h"

#include <QCommandLineParser>

namespace ifs::cli {

namespace {

void addMislabelOptions(QCommandLineParser &parser)
{
    parser.addOption(helpOption());
    parser.addOption(
        {QStringLiteral("data"), QStringLiteral("the ImageFolder root"), QStringLiteral("ROOT")});
    parser.addOption({QStringLiteral("checkpoint"),
                      QStringLiteral("a checkpoint: ours, or a state dict with --model"),
                      QStringLiteral("CKPT")});
    parser.addOption({QStringLiteral("model"),
                      QStringLiteral("the architecture, for checkpoints that do not say it"),
                      QStringLiteral("NAME")});
    parser.addOption({QStringLiteral("device"),
                      QStringLiteral("auto, cpu, cuda or cuda:N (default auto)"),
                      QStringLiteral("DEV")});
    parser.addOption({QStringLiteral("top"),
                      QStringLiteral("how many images to list (default 20; 0: all)"),
                      QStringLiteral("K")});
    parser.addOption({QStringLiteral("rank-by"),
                      QStringLiteral("self-confidence (default), loss or margin"),
                      QStringLiteral("SCORE")});
    parser.addOption({QStringLiteral("json"), QStringLiteral("print JSON")});
}

std::optional<MislabelRanking> rankingFromName(const QString &name)
{
    if (name.isEmpty() || name == u"self-confidence")
        return MislabelRanking::SelfConfidence;
    if (name == u"loss")
        return MislabelRanking::Loss;
    if (name == u"margin")
        return MislabelRanking::NormalizedMargin;
    return std::nullopt;
}

void printMislabelJson(const MislabelScan &scan, qsizetype top)
{
    JsonWriter json(2);
    json.beginObject();
    json.key("images").value(int64_t(scan.ranked.size()));
    json.key("candidates").beginArray();
    for (qsizetype i = 0; i < top; ++i) {
        const MislabelCandidate &c = scan.ranked[i];
        json.beginObject();
        json.key("rank").value(int64_t(i + 1));
        json.key("path").value(c.path);
        json.key("split").value(c.split);
        json.key("given").value(scan.classes.value(c.label));
        json.key("predicted").value(scan.classes.value(c.predicted));
        json.key("self_confidence").value(double(c.selfConfidence));
        json.key("predicted_probability").value(double(c.predictedProbability));
        json.key("loss").value(double(c.loss));
        json.key("margin").value(double(c.margin));
        json.endObject();
    }
    json.endArray();
    json.key("skipped").beginArray();
    for (const LoaderFailure &f : scan.failures) {
        json.beginObject();
        json.key("path").value(f.path);
        json.key("error").value(f.message);
        json.endObject();
    }
    json.endArray();
    json.endObject();
    writeOut(json.take() + '\n');
}

} // namespace

int runMislabeled(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Rank every image of an ImageFolder (train and val) by how much a checkpoint doubts its "
        "label: the probability of the given class (self-confidence, as cleanlab ranks label "
        "issues) and the loss, with the checkpoint's val transforms. Worst first."));
    addMislabelOptions(parser);
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    if (!parser.isSet(QStringLiteral("data")) || !parser.isSet(QStringLiteral("checkpoint"))) {
        printError(QStringLiteral("give the images with --data ROOT and the model with "
                                  "--checkpoint CKPT"));
        return kExitUsage;
    }
    bool ok = true;
    const int top
        = parser.isSet(QStringLiteral("top")) ? parser.value(QStringLiteral("top")).toInt(&ok) : 20;
    const auto ranking = rankingFromName(parser.value(QStringLiteral("rank-by")));
    if (!ok || top < 0 || !ranking) {
        printError(!ranking ? QStringLiteral("--rank-by must be self-confidence, loss or margin")
                            : QStringLiteral("--top must be a number, 0 or more"));
        return kExitUsage;
    }
    configureRuntime(requestedThreads());
    ClassifierOptions options;
    options.arch = parser.value(QStringLiteral("model"));
    if (parser.isSet(QStringLiteral("device")))
        options.device = parser.value(QStringLiteral("device"));
    options.amp = AmpMode::Off;
    auto classifier = Classifier::load(parser.value(QStringLiteral("checkpoint")), options);
    if (!classifier) {
        printError(classifier.errorMessage());
        return kExitFailure;
    }
    ProgressLine bar(QStringLiteral("scoring"));
    auto scan
        = scoreDatasetLabels(classifier.value(), parser.value(QStringLiteral("data")), *ranking,
                             [&](qint64 done, qint64 total) { bar.update(done, total); });
    bar.finish();
    if (!scan) {
        printError(scan.errorMessage());
        return kExitFailure;
    }
    const qsizetype shown
        = top == 0 ? scan->ranked.size() : std::min<qsizetype>(top, scan->ranked.size());
    if (parser.isSet(QStringLiteral("json"))) {
        printMislabelJson(scan.value(), shown);
        return kExitOk;
    }
    for (const QString &note : scan->notes)
        printErr(QStringLiteral("  %1").arg(note));
    printOut(QStringLiteral("rank  self-conf   loss  given -> predicted  path"));
    for (qsizetype i = 0; i < shown; ++i) {
        const MislabelCandidate &c = scan->ranked[i];
        printOut(QStringLiteral("%1  %2  %3  %4 -> %5  %6")
                     .arg(i + 1, 4)
                     .arg(double(c.selfConfidence), 8, 'f', 4)
                     .arg(double(c.loss), 6, 'f', 2)
                     .arg(scan->classes.value(c.label), scan->classes.value(c.predicted), c.path));
    }
    for (const LoaderFailure &f : scan->failures)
        printErr(QStringLiteral("skipped %1: %2").arg(f.path, f.message));
    return kExitOk;
}

} // namespace ifs::cli
