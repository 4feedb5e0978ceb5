// ifstudio-cli weights: torchvision's pretrained weights, as the app finds them in torch.hub's
// cache: list them (with where each file is), verify cached files, fetch one.
#include "commands.h"

#include "base/jsonwriter.h"
#include "training/pretrained.h"
#include "training/weightsdownload.h"

#include <QCommandLineParser>
#include <QDir>
#include <QFileInfo>

#include <atomic>
#include <csignal>

namespace ifs::cli {

namespace {

std::atomic_bool g_cancelFetch{false};

extern "C" void cancelFetch(int)
{
    g_cancelFetch.store(true); // lock-free: async-signal-safe; the download polls it
}

/// One row's state in the cache: "missing", "cached", or with `verify` "verified" or the
/// reason it is refused (in `problem`).
QString cacheState(const PretrainedWeights &w, const PretrainedOptions &options, bool verify,
                   QString *problem)
{
    const QString path = options.pathOf(w);
    if (!QFileInfo(path).isFile())
        return QStringLiteral("missing");
    if (!verify)
        return QStringLiteral("cached");
    if (Status ok = verifyWeightsFile(path, w, options); !ok) {
        *problem = ok.errorMessage();
        return QStringLiteral("wrong hash");
    }
    return QStringLiteral("verified");
}

int listWeights(const QList<PretrainedWeights> &rows, const PretrainedOptions &options, bool verify,
                bool json)
{
    JsonWriter out;
    out.beginArray();
    int refused = 0;
    for (const PretrainedWeights &w : rows) {
        QString problem;
        const QString state = cacheState(w, options, verify, &problem);
        refused += problem.isEmpty() ? 0 : 1;
        const WeightsPreprocessing &p = w.preprocessing;
        if (json) {
            out.beginObject();
            out.key("arch").value(w.arch).key("name").value(w.name);
            out.key("default").value(w.isDefault).key("url").value(options.urlOf(w));
            out.key("file").value(options.pathOf(w)).key("state").value(state);
            out.key("top1").value(w.top1).key("resize_size").value(p.resizeSize);
            out.key("crop_size").value(p.cropSize).key("interpolation").value(p.interpolation);
            out.endObject();
            continue;
        }
        printOut(QStringLiteral("%1 %2%3  top-1 %4%  resize %5, crop %6%7  %8  %9")
                     .arg(w.arch, -18)
                     .arg(w.name, w.isDefault ? QStringLiteral(" (default)") : QString())
                     .arg(w.top1, 0, 'f', 1)
                     .arg(p.resizeSize)
                     .arg(p.cropSize)
                     .arg(p.interpolation == u"BILINEAR"
                              ? QString()
                              : QString(QStringLiteral(", ") + p.interpolation.toLower()))
                     .arg(state, QDir::toNativeSeparators(options.pathOf(w))));
        if (!problem.isEmpty())
            printErr(QStringLiteral("  %1").arg(problem));
    }
    out.endArray();
    if (json)
        writeOut(out.take() + '\n');
    return refused > 0 ? kExitFailure : kExitOk;
}

int fetchWeights(const PretrainedWeights &w, const PretrainedOptions &options)
{
    std::signal(SIGINT, cancelFetch);
    ProgressLine bar(QStringLiteral("Downloading %1").arg(w.fileName()));
    DownloadCallbacks callbacks;
    callbacks.progress = [&bar](const DownloadProgress &p) {
        bar.update(p.received, p.total > 0 ? p.total : p.received + 1);
    };
    callbacks.cancelled = [] {
        return g_cancelFetch.load();
    };
    const Result<QString> path = ensurePretrainedWeights(w, options, callbacks);
    bar.finish();
    std::signal(SIGINT, SIG_DFL);
    if (!path) {
        printError(path.errorMessage());
        return path.isCancellation() ? kExitCancelled : kExitFailure;
    }
    printOut(QDir::toNativeSeparators(path.value()));
    return kExitOk;
}

} // namespace

int runWeights(const QStringList &args)
{
    QCommandLineParser parser;
    parser.setApplicationDescription(QStringLiteral(
        "torchvision 0.14's ImageNet weights for the models (what `train --pretrained` uses): "
        "their files in torch.hub's cache ($TORCH_HOME/hub/checkpoints, default "
        "~/.cache/torch/hub/checkpoints), which Python's torchvision shares. --verify checks "
        "cached files against the SHA-256 prefix in their names; --fetch downloads one (a "
        "partial download resumes)."));
    parser.addOption(helpOption());
    parser.addOption({QStringLiteral("model"), QStringLiteral("only this architecture"),
                      QStringLiteral("NAME")});
    parser.addOption({QStringLiteral("weights"),
                      QStringLiteral("with --fetch: V1, V2 or DEFAULT (default DEFAULT)"),
                      QStringLiteral("V1|V2")});
    parser.addOption({QStringLiteral("fetch"),
                      QStringLiteral("download the weights of --model into the cache")});
    parser.addOption({QStringLiteral("verify"), QStringLiteral("check the cached files' hashes")});
    parser.addOption({QStringLiteral("json"), QStringLiteral("the list as JSON")});
    if (const int code = parseCommandLine(parser, args); code >= 0)
        return code;
    const QString model = parser.value(QStringLiteral("model"));
    QList<PretrainedWeights> rows
        = model.isEmpty() ? pretrainedWeightsTable() : pretrainedWeightsFor(model);
    const QString request = parser.isSet(QStringLiteral("weights"))
        ? parser.value(QStringLiteral("weights"))
        : QStringLiteral("DEFAULT");
    const PretrainedOptions options = PretrainedOptions::fromEnvironment();
    if (parser.isSet(QStringLiteral("fetch"))) {
        if (model.isEmpty()) {
            printError(QStringLiteral("--fetch needs --model NAME. Try `ifstudio-cli weights "
                                      "--help`."));
            return kExitUsage;
        }
        const Result<PretrainedWeights> w = findPretrainedWeights(model, request);
        if (!w) {
            printError(w.errorMessage());
            return kExitUsage;
        }
        return fetchWeights(w.value(), options);
    }
    if (rows.isEmpty()) {
        printError(findPretrainedWeights(model, request).errorMessage());
        return kExitUsage;
    }
    return listWeights(rows, options, parser.isSet(QStringLiteral("verify")),
                       parser.isSet(QStringLiteral("json")));
}

} // namespace ifs::cli
