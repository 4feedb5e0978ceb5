// ifstudio-cli sample-data: exports Debian's Fashion-MNIST as an ImageFolder tree.
#include "commands.h"

#include "dataset/sampledata.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFileInfo>

#include <atomic>
#include <csignal>

namespace ifs::cli {

namespace {

const char kSampleDataUsage[]
    = "Usage: ifstudio-cli sample-data DEST [--source DIR] [--limit-per-class N]\n"
      "\n"
      "Exports Fashion-MNIST (Debian's dataset-fashion-mnist package) as an ImageFolder tree:\n"
      "DEST/train/<class>/<n>.png (60000 images) and DEST/val/<class>/<n>.png (10000 images).\n"
      "Writes into a temporary folder and moves it into place; running it again keeps a complete\n"
      "export. Never overwrites train/ or val/ folders it did not write.\n"
      "\n"
      "Options:\n"
      "  --source DIR           folder with the IDX files, plain or .gz\n"
      "                         (default: /usr/share/datasets/fashion-mnist)\n"
      "  --limit-per-class N    keep only the first N images of each class per split\n"
      "  -h, --help             show this help\n";

std::atomic_bool g_cancelRequested{false};

extern "C" void requestCancel(int)
{
    // Lock-free atomic store: async-signal-safe. The export polls it and cleans up after itself.
    g_cancelRequested.store(true);
}

/// Routes Ctrl+C to the export's cancel flag while it runs, so that its temporary folder goes.
class InterruptGuard
{
public:
    InterruptGuard() { m_previous = std::signal(SIGINT, requestCancel); }
    ~InterruptGuard() { std::signal(SIGINT, m_previous); }
    InterruptGuard(const InterruptGuard &) = delete;
    InterruptGuard &operator=(const InterruptGuard &) = delete;

private:
    void (*m_previous)(int) = SIG_DFL;
};

QString describeCounts(const SampleDataResult &result)
{
    return QStringLiteral("%1 train and %2 val images in %3 classes")
        .arg(result.trainImages)
        .arg(result.valImages)
        .arg(fashionMnistFolderNames().size());
}

} // namespace

int runSampleData(const QStringList &args)
{
    QString dest;
    SampleDataOptions options;
    for (int i = 1; i < args.size(); ++i) {
        const QString &arg = args[i];
        if (arg == u"-h" || arg == u"--help") {
            writeOut(QByteArray(kSampleDataUsage));
            return kExitOk;
        }
        if (arg == u"--source" || arg == u"--limit-per-class") {
            if (i + 1 >= args.size()) {
                printError(
                    QStringLiteral("%1 needs a value. Try `ifstudio-cli sample-data --help`.")
                        .arg(arg));
                return kExitUsage;
            }
            const QString value = args[++i];
            if (arg == u"--source") {
                options.source = value;
            } else {
                bool ok = false;
                options.limitPerClass = value.toInt(&ok);
                if (!ok || options.limitPerClass < 0) {
                    printError(QStringLiteral("--limit-per-class needs a number of images "
                                              "(0 = all), not “%1”.")
                                   .arg(value));
                    return kExitUsage;
                }
            }
            continue;
        }
        if (arg.startsWith(u'-') && arg != u"-") {
            printError(QStringLiteral("unknown option “%1”. Try `ifstudio-cli sample-data --help`.")
                           .arg(arg));
            return kExitUsage;
        }
        if (!dest.isEmpty()) {
            printError(
                QStringLiteral("one destination folder only, not “%1” and “%2”.").arg(dest, arg));
            return kExitUsage;
        }
        dest = arg;
    }
    if (dest.isEmpty()) {
        printErr(QString::fromUtf8(kSampleDataUsage));
        return kExitUsage;
    }

    const QString source = options.source.isEmpty() ? defaultFashionMnistSource() : options.source;
    if (missingFashionMnistFiles(source).size() == fashionMnistFileNames().size()) {
        printError(QStringLiteral("Fashion-MNIST was not found in %1: install Debian's "
                                  "dataset-fashion-mnist package (apt-get install "
                                  "dataset-fashion-mnist) or pass --source DIR")
                       .arg(QDir::toNativeSeparators(source)));
        return kExitFailure;
    }
    options.threads = requestedThreads();

    QElapsedTimer timer;
    timer.start();
    g_cancelRequested = false;
    Result<SampleDataResult> result = [&] {
        const InterruptGuard interrupts;
        ProgressLine progress(QStringLiteral("Exporting Fashion-MNIST"));
        return exportFashionMnist(
            dest, options,
            [&progress](int64_t done, int64_t total) { progress.update(done, total); },
            &g_cancelRequested);
    }();
    if (!result) {
        printError(result.errorMessage());
        return kExitFailure;
    }
    const QString root = QDir::toNativeSeparators(result->root);
    if (result->cancelled) {
        printErr(QStringLiteral("Cancelled; %1 is as it was.").arg(root));
        return kExitCancelled;
    }
    if (result->alreadyThere) {
        printOut(QStringLiteral("A complete Fashion-MNIST export is already in %1 (%2); nothing "
                                "written.")
                     .arg(root, describeCounts(result.value())));
    } else {
        printOut(QStringLiteral("Exported Fashion-MNIST to %1: %2, in %3 s.")
                     .arg(root, describeCounts(result.value()))
                     .arg(double(timer.elapsed()) / 1000.0, 0, 'f', 1));
    }
    printOut(QStringLiteral("  train: %1").arg(QDir::toNativeSeparators(result->root + u"/train")));
    printOut(QStringLiteral("  val:   %1").arg(QDir::toNativeSeparators(result->root + u"/val")));
    return kExitOk;
}

} // namespace ifs::cli
