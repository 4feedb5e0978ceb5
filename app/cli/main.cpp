// ifstudio-cli: the headless face of ImageFolder Studio, over the same core as the GUI.
//
// The commands are one table (kCommands below): --help, the dispatch and the hand-over to the
// helper executables all read it.
#include "commands.h"

#include "base/allocator.h"
#include "base/version.h"

#include <QCoreApplication>
#include <QDir>
#include <QFileInfo>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>
#include <unistd.h>

namespace {

using namespace ifs::cli;

/// Which executable runs a command: the light ones run in every executable; the others in
/// ifstudio-cli-compute (decodes images) or ifstudio-cli-train (loads libtorch).
enum class Runner { Light, Compute, Train };

// A row's runner and its function, stated once: the function where this executable links it
// (see app/CMakeLists.txt), else nullptr, and the front then hands the command line over to the
// executable that does.
#define IFS_LIGHT(fn) Runner::Light, &fn
#if defined(IFS_CLI_FRONT) || defined(IFS_CLI_TRAIN)
#define IFS_COMPUTE(fn) Runner::Compute, nullptr
#else
#define IFS_COMPUTE(fn) Runner::Compute, &fn
#endif
#ifdef IFS_CLI_TRAIN
#define IFS_TRAIN(fn) Runner::Train, &fn
#else
#define IFS_TRAIN(fn) Runner::Train, nullptr
#endif

struct Command
{
    const char *name;
    const char *synopsis; ///< as --help shows it, after the name
    const char *summary;
    Runner runner;
    int (*run)(const QStringList &args);
};

// In the order --help lists them.
const Command kCommands[] = {
    {"scan", "ROOT [--json] [--allow-empty]",
     "classes, class_to_idx and samples, as torchvision's ImageFolder", IFS_LIGHT(runScan)},
    {"check", "ROOT [--json]",
     "decode every image; list unreadable, truncated, odd and duplicate files",
     IFS_COMPUTE(runCheck)},
    {"transform", "IMAGE --pipeline CODE -o OUT.pt|OUT.png [--seed S]",
     "run a torchvision transform pipeline, exactly as torchvision would",
     IFS_COMPUTE(runTransform)},
    {"inspect", "FILE [--json] [--stats] [--map-location DEV]",
     "what a checkpoint holds (any torch.save file, or safetensors), without running it",
     IFS_LIGHT(runInspect)},
    {"repair", "IN -o OUT [--strip-prefix P] [--against FILE [--auto]] ...",
     "a repaired copy: prefixes, renames, drops, casts, devices", IFS_LIGHT(runRepair)},
    {"diff", "A B [--json]", "compare two checkpoints' state dicts", IFS_LIGHT(runDiff)},
    {"train", "--data ROOT --out RUNDIR [--model NAME] [--epochs N] [--resume CKPT] ...",
     "train a classifier (CPU or CUDA); last.pth/best.pth load in Python", IFS_TRAIN(runTrain)},
    {"lr-find", "--data ROOT [--model NAME] [--start-lr A --end-lr B --num-it N] [--json] ...",
     "find a learning rate, as fastai's lr_find: the loss curve and suggested rates",
     IFS_TRAIN(runLrFind)},
    {"eval", "--data ROOT --checkpoint CKPT [--json]",
     "accuracy, per-class report and confusion matrix", IFS_TRAIN(runEval)},
    {"predict",
     "IMAGE... --checkpoint CKPT|--model EXPORTED [--topk K] [--csv OUT.csv] [--json] [--cam DIR]",
     "top-k classes of images or folders", IFS_TRAIN(runPredict)},
    {"export", "CKPT --format torchscript|onnx|both -o DIR [--opset N] [--softmax] [--no-verify]",
     "TorchScript or ONNX with labels and preprocessing, checked against the model",
     IFS_TRAIN(runExport)},
    {"mislabeled", "--data ROOT --checkpoint CKPT [--top K] [--json]",
     "images whose labels the model doubts most (self-confidence, loss)", IFS_TRAIN(runMislabeled)},
    {"weights", "[--model NAME] [--verify] [--fetch [--weights V1|V2]] [--json]",
     "torchvision's ImageNet weights in torch.hub's cache: list, verify, download",
     IFS_COMPUTE(runWeights)},
    {"sample-data", "DEST", "export Debian's Fashion-MNIST as DEST/{train,val}/<class>/<n>.png",
     IFS_LIGHT(runSampleData)},
};

const Command *findCommand(const QString &name)
{
    for (const Command &command : kCommands) {
        if (name == QLatin1String(command.name))
            return &command;
    }
    return nullptr;
}

QString commandNames()
{
    QStringList names;
    for (const Command &command : kCommands)
        names.append(QLatin1String(command.name));
    return names.join(u", ");
}

/// The overview: a line per command, its summary in a column (below a long synopsis).
QByteArray usageText()
{
    constexpr qsizetype kColumn = 40;
    QString text = QStringLiteral(
        "Usage: ifstudio-cli [--threads N] <command> [options]\n"
        "\n"
        "ImageFolder Studio, headless: see what torchvision makes of an image folder, check it, "
        "and more.\n"
        "\n"
        "Commands:\n");
    for (const Command &command : kCommands) {
        const QString head = QStringLiteral("  %1 %2").arg(QLatin1String(command.name),
                                                           QString::fromUtf8(command.synopsis));
        const QString summary = QString::fromUtf8(command.summary);
        if (head.size() < kColumn - 1)
            text += head.leftJustified(kColumn) + summary + u'\n';
        else
            text += head + u'\n' + QString(kColumn, u' ') + summary + u'\n';
    }
    text += QStringLiteral("\n"
                           "Options:\n"
                           "  --threads N      compute threads (default: all cores)\n"
                           "  -h, --help       show this help (or `ifstudio-cli <command> "
                           "--help`)\n"
                           "  -v, --version    show the version\n");
    return text.toUtf8();
}

#ifdef IFS_CLI_FRONT
/// Hands the whole command line over to `helper` (ifstudio-cli-compute or ifstudio-cli-train, see
/// app/CMakeLists.txt): beside this executable in a build tree, in ../libexec/ifstudio/ once
/// installed. Returns only on error.
int execHelper(const QString &helper, char **argv)
{
    const QString dir = QCoreApplication::applicationDirPath();
    const QStringList candidates
        = {dir + u'/' + helper,
           QDir::cleanPath(dir + QStringLiteral("/../libexec/ifstudio/") + helper)};
    for (const QString &candidate : candidates) {
        if (!QFileInfo(candidate).isExecutable())
            continue;
        const QByteArray path = QFile::encodeName(candidate);
        std::fflush(stdout);
        execv(path.constData(), argv);
        printError(QStringLiteral("cannot run %1: %2")
                       .arg(candidate, QString::fromLocal8Bit(std::strerror(errno))));
        return kExitFailure;
    }
    printError(QStringLiteral("%1 is missing next to %2 and in ../libexec/ifstudio: the "
                              "installation is incomplete. Reinstall the package or rebuild.")
                   .arg(helper, dir));
    return kExitFailure;
}
#endif

/// Runs `command` here, or hands it over to the executable that links it (front only).
int runCommand(const Command &command, const QStringList &commandArgs, char **argv)
{
    if (command.run)
        return command.run(commandArgs);
#ifdef IFS_CLI_FRONT
    return execHelper(command.runner == Runner::Train ? QStringLiteral("ifstudio-cli-train")
                                                      : QStringLiteral("ifstudio-cli-compute"),
                      argv);
#else
    printError(QStringLiteral("“%1” is not run by this helper executable: use ifstudio-cli.")
                   .arg(QLatin1String(command.name)));
    return kExitUsage;
#endif
}

/// Reads the global options before the command; returns the command's position in args, or an
/// exit code (as a negative number minus one) when the process should end here.
int parseGlobalOptions(const QStringList &args, int &threads)
{
    int at = 1;
    while (at < args.size() && args[at].startsWith(u'-')) {
        const QString &arg = args[at];
        if (arg == u"-h" || arg == u"--help") {
            writeOut(usageText());
            return -1 - kExitOk;
        }
        if (arg == u"-v" || arg == u"--version") {
            std::printf("ifstudio-cli %s\n", IFS_VERSION);
            return -1 - kExitOk;
        }
        if (arg == u"--threads" && at + 1 < args.size()) {
            bool ok = false;
            threads = args[at + 1].toInt(&ok);
            if (!ok || threads < 1) {
                printError(QStringLiteral("--threads needs a positive number, not “%1”.")
                               .arg(args[at + 1]));
                return -1 - kExitUsage;
            }
            at += 2;
            continue;
        }
        printError(QStringLiteral("unknown option “%1”. Try `ifstudio-cli --help`.").arg(arg));
        return -1 - kExitUsage;
    }
    if (at >= args.size()) {
        const QByteArray usage = usageText();
        std::fwrite(usage.constData(), 1, size_t(usage.size()), stderr);
        return -1 - kExitUsage;
    }
    return at;
}

} // namespace

int main(int argc, char **argv)
{
    // Before anything allocates: the compute commands decode, transform and train on many
    // images, and the light ones read checkpoints with large tensors.
    ifs::tuneAllocator();
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("ifstudio-cli"));
    QCoreApplication::setOrganizationName(QStringLiteral("ImageFolderStudio"));
    QCoreApplication::setApplicationVersion(QStringLiteral(IFS_VERSION));

    const QStringList args = app.arguments();
    int threads = 0;
    const int at = parseGlobalOptions(args, threads);
    if (at < 0)
        return -1 - at;
    // libtorch is not loaded for commands that do not compute with it (its start-up alone costs
    // more than a whole scan); they use the thread count for their own workers.
    setRequestedThreads(threads);

    const QString name = args[at];
    const Command *command = findCommand(name);
    if (!command) {
        printError(QStringLiteral("unknown command “%1”. Commands: %2. Try `ifstudio-cli --help`.")
                       .arg(name, commandNames()));
        return kExitUsage;
    }
    const QStringList commandArgs
        = QStringList{QStringLiteral("ifstudio-cli ") + name} + args.mid(at + 1);
    return runCommand(*command, commandArgs, argv);
}
