// ifstudio-cli lr-find: the LR finder of the core (fastai's lr_find) on train's options, printing
// the curve as a compact table and the suggested rates, or one JSON object.
#include "commands.h"
#include "trainoptions.h"

#include "torch/runtime.h"
#include "training/lrfinder.h"

#include <QCommandLineParser>
#include <QJsonDocument>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>

namespace ifs::cli {

namespace {

std::atomic_bool g_cancel{false};
static_assert(std::atomic_bool::is_always_lock_free); // set from a signal handler

extern "C" void onLrFindInterrupt(int)
{
    if (g_cancel.exchange(true))
        std::_Exit(kExitCancelled); // a second Ctrl+C: leave now
}

QString rate(double lr)
{
    return QString::number(lr, 'e', 2);
}

QString lossText(double loss)
{
    return std::isfinite(loss) ? QString::number(loss, 'f', 4) : QStringLiteral("nan");
}

/// The curve in about 20 rows (every step when there are few), the last step always, and the
/// steps the suggestions point at, marked.
void printCurve(const LrFindResult &result)
{
    const qsizetype n = result.lrs.size();
    const qsizetype every = std::max<qsizetype>(1, (n + 19) / 20);
    printOut(QStringLiteral("%1  %2  %3  %4")
                 .arg(QStringLiteral("step"), 5)
                 .arg(QStringLiteral("lr"), 9)
                 .arg(QStringLiteral("loss"), 9)
                 .arg(QStringLiteral("smoothed"), 9));
    for (qsizetype i = 0; i < n; ++i) {
        QStringList marks;
        for (const LrSuggestion &s : result.suggestions) {
            if (s.pointLr == double(float(result.lrs[i])))
                marks.append(QStringLiteral("← %1").arg(s.name));
        }
        if (i % every != 0 && i != n - 1 && marks.isEmpty())
            continue;
        QString row = QStringLiteral("%1  %2  %3  %4")
                          .arg(i + 1, 5)
                          .arg(rate(result.lrs[i]), 9)
                          .arg(lossText(result.losses[i]), 9)
                          .arg(lossText(result.smoothed[i]), 9);
        if (!marks.isEmpty())
            row += QStringLiteral("  ") + marks.join(QStringLiteral(", "));
        printOut(row);
    }
}

void printSuggestions(const LrFindResult &result)
{
    printOut(result.stopMessage);
    if (result.suggestions.isEmpty())
        return;
    printOut(QStringLiteral("Suggested learning rates:"));
    for (const LrSuggestion &s : result.suggestions) {
        const QString why = s.name == u"steep"
            ? QStringLiteral("the steepest descent of the smoothed loss")
            : s.name == u"minimum"
            ? QStringLiteral("a tenth of the rate at the lowest loss, %1").arg(rate(s.pointLr))
            : QStringLiteral("fastai's default: inside the longest valley of the curve");
        printOut(QStringLiteral("  %1  %2  (%3)").arg(s.name, -8).arg(rate(s.lr), why));
    }
}

/// lr-find's own options; false (with `error`) for a bad value.
bool readFinderOptions(const QCommandLineParser &parser, LrFindOptions &options, QString &error)
{
    const auto number = [&](const char *name, double &out) {
        const QString key = QString::fromLatin1(name);
        if (!parser.isSet(key))
            return true;
        bool ok = false;
        out = parser.value(key).toDouble(&ok);
        if (!ok)
            error = QStringLiteral("--%1 needs a number, not “%2”").arg(key, parser.value(key));
        return ok;
    };
    double numIt = options.numIt;
    if (!number("start-lr", options.startLr) || !number("end-lr", options.endLr)
        || !number("num-it", numIt))
        return false;
    if (numIt != std::floor(numIt) || numIt < 1 || numIt > 100000) {
        error = QStringLiteral("--num-it needs a whole number of steps, 1 to 100000");
        return false;
    }
    options.numIt = int(numIt);
    options.stopDiv = !parser.isSet(QStringLiteral("no-stop-div"));
    if (Status ok = options.validate(); !ok) {
        error = ok.errorMessage();
        return false;
    }
    return true;
}

} // namespace

int runLrFind(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "Find a learning rate, as fastai's lr_find: a mock training on the dataset whose rate "
        "grows exponentially from --start-lr to --end-lr over --num-it steps, with the loss "
        "smoothed (beta 0.98), stopping when it exceeds 4 × its best. Prints the curve and the "
        "suggested rates (steep, minimum / 10, valley). The model and optimizer are those train "
        "would use with the same options; nothing is written."));
    parser.addOption(helpOption());
    addTrainOptions(parser, TrainOptionsFor::LrFind);
    parser.addOption({QStringLiteral("start-lr"), QStringLiteral("first rate (default 1e-7)"),
                      QStringLiteral("LR")});
    parser.addOption(
        {QStringLiteral("end-lr"), QStringLiteral("last rate (default 10)"), QStringLiteral("LR")});
    parser.addOption({QStringLiteral("num-it"), QStringLiteral("steps of the ramp (default 100)"),
                      QStringLiteral("N")});
    parser.addOption({QStringLiteral("no-stop-div"),
                      QStringLiteral("run every step, also after the loss diverged")});
    parser.addOption({QStringLiteral("json"),
                      QStringLiteral("one JSON object: lrs, losses, smoothed, suggestions, stop")});
    if (const int code = parseCommandLine(parser, withPretrainedValue(args)); code >= 0)
        return code;
    for (const QString &name : trainOnlyOptions()) {
        if (parser.isSet(name)) {
            printError(QStringLiteral("lr-find does not take --%1 (it trains no run); see "
                                      "ifstudio-cli lr-find --help")
                           .arg(name));
            return kExitUsage;
        }
    }
    Result<TrainConfig> config = trainConfigFromOptions(parser);
    LrFindOptions options;
    QString error;
    if (!config || !readFinderOptions(parser, options, error)) {
        printError(config ? error : config.errorMessage());
        return kExitUsage;
    }
    if (config->threads <= 0)
        config->threads = requestedThreads();
    configureRuntime(config->threads);

    const bool json = parser.isSet(QStringLiteral("json"));
    std::signal(SIGINT, onLrFindInterrupt);
    std::signal(SIGTERM, onLrFindInterrupt);
    ProgressLine bar(QStringLiteral("Finding the learning rate"));
    LrFindCallbacks callbacks;
    callbacks.progress = [&bar](const LrFindProgress &p) {
        bar.update(p.iteration, p.iterations);
    };
    Result<LrFindResult> result = findLearningRate(config.value(), options, callbacks, &g_cancel);
    bar.finish();
    if (!result) {
        printError(result.errorMessage());
        return result.isCancellation() ? kExitCancelled : kExitFailure;
    }
    if (json) {
        writeOut(QJsonDocument(lrFindResultJson(result.value())).toJson(QJsonDocument::Compact)
                 + '\n');
        return kExitOk;
    }
    for (const QString &note : result->start.notes)
        printErr(note);
    printCurve(result.value());
    printSuggestions(result.value());
    return kExitOk;
}

} // namespace ifs::cli
