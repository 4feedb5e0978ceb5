// The CLI's console plumbing shared by every command: output, argument parsing, progress.
#include "commands.h"

#include "base/filenames.h"

#include <QCommandLineParser>
#include <QCoreApplication>
#include <QElapsedTimer>
#include <QMutex>

#include <cstdio>
#include <unistd.h>

namespace ifs::cli {

namespace {
int g_threads = 0;
} // namespace

int requestedThreads()
{
    return g_threads;
}

void setRequestedThreads(int threads)
{
    g_threads = threads;
}

void writeOut(const QByteArray &bytes)
{
    std::fwrite(bytes.constData(), 1, size_t(bytes.size()), stdout);
}

// Texts may name files whose names hold undecodable bytes (base/filenames.h): those show as U+FFFD.
void printOut(const QString &text)
{
    writeOut(displayFileName(text).toUtf8() + '\n');
}

void printErr(const QString &text)
{
    const QByteArray bytes = displayFileName(text).toUtf8() + '\n';
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
