// ifstudio-cli: the headless face of ImageFolder Studio, over the same core as the GUI.
#include "commands.h"

#include "base/allocator.h"
#include "base/version.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QDateTime>
#include <QElapsedTimer>
#include <QMutex>

#include <QDir>
#include <QFileInfo>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <unistd.h>

namespace ifs::cli {

namespace {
int g_threads = 0;
} // namespace

int requestedThreads()
{
    return g_threads;
}

void writeOut(const QByteArray &bytes)
{
    std::fwrite(bytes.constData(), 1, size_t(bytes.size()), stdout);
}

void printOut(const QString &text)
{
    writeOut(text.toUtf8() + '\n');
}

void printErr(const QString &text)
{
    const QByteArray bytes = text.toUtf8() + '\n';
    std::fwrite(bytes.constData(), 1, size_t(bytes.size()), stderr);
}

void printError(const QString &message)
{
    printErr(QStringLiteral("ifstudio-cli: ") + message);
}

QCommandLineOption helpOption()
{
    return QCommandLineOption({QStringLiteral("h"), QStringLiteral("help")},
                              QStringLiteral("Show this help."));
}

int parseCommandLine(QCommandLineParser &parser, const QStringList &args)
{
    const QString program = args.value(0, QStringLiteral("ifstudio-cli"));
    if (!parser.parse(args)) {
        QString error = parser.errorText(); // Qt's ends with a full stop
        while (error.endsWith(u'.'))
            error.chop(1);
        printError(error + QStringLiteral(". Try `%1 --help`.").arg(program));
        return kExitUsage;
    }
    if (parser.isSet(QStringLiteral("help"))) {
        // Qt names argv[0] in the usage line: the helper's path when the front handed over.
        QString text = parser.helpText();
        const QString usage = QStringLiteral("Usage: ") + QCoreApplication::arguments().value(0);
        if (text.startsWith(usage))
            text.replace(0, usage.size(), QStringLiteral("Usage: ") + program);
        writeOut(text.toUtf8());
        return kExitOk;
    }
    return -1;
}

struct ProgressLine::Private
{
    QString label;
    bool tty = isatty(STDERR_FILENO);
    QMutex mutex;
    QElapsedTimer sinceLast;
    bool shown = false;
    int loggedTenths = 0; ///< off a terminal: the last 10% mark written as a line
    QElapsedTimer age;
};

ProgressLine::ProgressLine(QString label)
    : d(new Private)
{
    d->label = std::move(label);
    d->age.start();
}

ProgressLine::~ProgressLine()
{
    finish();
    delete d;
}

void ProgressLine::update(qint64 done, qint64 total)
{
    QMutexLocker lock(&d->mutex);
    if (!d->tty) {
        // A log file (nohup, CI) gets a plain line at every 10%, not a redrawn bar, once the
        // work has run for a few seconds (quick jobs stay quiet).
        const int tenths = total > 0 ? int(10 * done / total) : 0;
        if (tenths <= d->loggedTenths || tenths >= 10 || d->age.elapsed() < 3000)
            return;
        d->loggedTenths = tenths;
        const QByteArray bytes = QStringLiteral("%1: %2% (%3/%4)\n")
                                     .arg(d->label)
                                     .arg(10 * tenths)
                                     .arg(done)
                                     .arg(total)
                                     .toUtf8();
        std::fwrite(bytes.constData(), 1, size_t(bytes.size()), stderr);
        std::fflush(stderr);
        return;
    }
    if (d->sinceLast.isValid() && d->sinceLast.elapsed() < 100 && done != total)
        return;
    d->sinceLast.start();
    QString line;
    if (total > 0) {
        const int width = 30;
        const int filled = int(width * done / total);
        line = QStringLiteral("\r%1 [%2%3] %4/%5")
                   .arg(d->label, QString(filled, u'#'), QString(width - filled, u'.'))
                   .arg(done)
                   .arg(total);
    } else {
        line = QStringLiteral("\r%1 %2").arg(d->label).arg(done);
    }
    const QByteArray bytes = line.toUtf8();
    std::fwrite(bytes.constData(), 1, size_t(bytes.size()), stderr);
    std::fflush(stderr);
    d->shown = true;
}

void ProgressLine::finish()
{
    QMutexLocker lock(&d->mutex);
    if (d->shown)
        std::fputs("\r\033[K", stderr);
    d->shown = false;
}

} // namespace ifs::cli

namespace {

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
        ifs::cli::printError(QStringLiteral("cannot run %1: %2")
                                 .arg(candidate, QString::fromLocal8Bit(std::strerror(errno))));
        return ifs::cli::kExitFailure;
    }
    ifs::cli::printError(QStringLiteral("%1 is missing next to %2 and in "
                                        "../libexec/ifstudio: the installation is incomplete. "
                                        "Reinstall the package or rebuild.")
                             .arg(helper, dir));
    return ifs::cli::kExitFailure;
}
#endif

const char kUsage[]
    = "Usage: ifstudio-cli [--threads N] <command> [options]\n"
      "\n"
      "ImageFolder Studio, headless: see what torchvision makes of an image folder, check it, and "
      "more.\n"
      "\n"
      "Commands:\n"
      "  scan ROOT [--json] [--allow-empty]   classes, class_to_idx and samples, as torchvision's "
      "ImageFolder\n"
      "  check ROOT [--json]                   decode every image; list unreadable, truncated, odd "
      "and duplicate files\n"
      "  transform IMAGE --pipeline CODE -o OUT.pt|OUT.png [--seed S]\n"
      "                                        run a torchvision transform pipeline, exactly as "
      "torchvision would\n"
      "  inspect FILE [--json] [--stats] [--map-location DEV]\n"
      "                                        what a checkpoint holds "
      "(.pt/.pth/.tar/.ckpt/.safetensors), without running it\n"
      "  repair IN -o OUT [--strip-prefix P] [--against FILE [--auto]] ...\n"
      "                                        a repaired copy: prefixes, renames, drops, casts, "
      "devices\n"
      "  diff A B [--json]                     compare two checkpoints' state dicts\n"
      "  train --data ROOT --out RUNDIR [--model NAME] [--epochs N] [--resume CKPT] ...\n"
      "                                        train a classifier (CPU or CUDA); last.pth/best.pth "
      "load in Python\n"
      "  eval --data ROOT --checkpoint CKPT [--json]\n"
      "                                        accuracy, per-class report and confusion matrix\n"
      "  predict IMAGE... --checkpoint CKPT [--topk K] [--json]\n"
      "                                        top-k classes of images or folders\n"
      "  sample-data DEST                      export Debian's Fashion-MNIST as "
      "DEST/{train,val}/<class>/<n>.png\n"
      "\n"
      "Options:\n"
      "  --threads N      compute threads (default: all cores)\n"
      "  -h, --help       show this help (or `ifstudio-cli <command> --help`)\n"
      "  -v, --version    show the version\n";

} // namespace

int main(int argc, char **argv)
{
#ifndef IFS_CLI_FRONT
    // The compute commands decode and transform many images.
    ifs::tuneAllocator();
#endif
    QCoreApplication app(argc, argv);
    QCoreApplication::setApplicationName(QStringLiteral("ifstudio-cli"));
    QCoreApplication::setOrganizationName(QStringLiteral("ImageFolderStudio"));
    QCoreApplication::setApplicationVersion(QStringLiteral(IFS_VERSION));

    QStringList args = app.arguments();
    int threads = 0;
    // Global options come before the command.
    int at = 1;
    while (at < args.size() && args[at].startsWith(u'-')) {
        const QString &arg = args[at];
        if (arg == u"-h" || arg == u"--help") {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (arg == u"-v" || arg == u"--version") {
            std::printf("ifstudio-cli %s\n", IFS_VERSION);
            return 0;
        }
        if (arg == u"--threads" && at + 1 < args.size()) {
            bool ok = false;
            threads = args[at + 1].toInt(&ok);
            if (!ok || threads < 1) {
                ifs::cli::printError(QStringLiteral("--threads needs a positive number, not “%1”.")
                                         .arg(args[at + 1]));
                return ifs::cli::kExitUsage;
            }
            at += 2;
            continue;
        }
        ifs::cli::printError(
            QStringLiteral("unknown option “%1”. Try `ifstudio-cli --help`.").arg(arg));
        return ifs::cli::kExitUsage;
    }
    if (at >= args.size()) {
        std::fputs(kUsage, stderr);
        return ifs::cli::kExitUsage;
    }
    // libtorch is not loaded for commands that do not compute with it (its start-up alone costs
    // more than a whole scan); they use the thread count for their own workers.
    ifs::cli::g_threads = threads;

    const QString command = args[at];
    QStringList commandArgs = {QStringLiteral("ifstudio-cli ") + command};
    commandArgs += args.mid(at + 1);

    if (command == u"scan")
        return ifs::cli::runScan(commandArgs);
    if (command == u"train" || command == u"eval" || command == u"predict") {
#ifdef IFS_CLI_TRAIN
        if (command == u"train")
            return ifs::cli::runTrain(commandArgs);
        if (command == u"eval")
            return ifs::cli::runEval(commandArgs);
        return ifs::cli::runPredict(commandArgs);
#elif defined(IFS_CLI_FRONT)
        return execHelper(QStringLiteral("ifstudio-cli-train"), argv);
#endif
    }
    if (command == u"check" || command == u"transform") {
#ifdef IFS_CLI_FRONT
        return execHelper(QStringLiteral("ifstudio-cli-compute"), argv);
#elif !defined(IFS_CLI_TRAIN)
        if (command == u"transform")
            return ifs::cli::runTransform(commandArgs);
        return ifs::cli::runCheck(commandArgs);
#endif
    }
    if (command == u"sample-data")
        return ifs::cli::runSampleData(commandArgs);
    if (command == u"inspect")
        return ifs::cli::runInspect(commandArgs);
    if (command == u"repair")
        return ifs::cli::runRepair(commandArgs);
    if (command == u"diff")
        return ifs::cli::runDiff(commandArgs);

    ifs::cli::printError(
        QStringLiteral("unknown command “%1”. Commands: scan, check, transform, inspect, repair, "
                       "diff, train, eval, predict, sample-data. Try `ifstudio-cli --help`.")
            .arg(command));
    return ifs::cli::kExitUsage;
}
