#pragma once

#include <QStringList>

class QCommandLineOption;
class QCommandLineParser;

// Each sub-command parses its own arguments (args[0] is "ifstudio-cli <command>") and returns the
// process exit code. The work itself is in the core; these only parse, call and print.
namespace ifs::cli {

enum ExitCode {
    kExitOk = 0,
    kExitFailure = 1, ///< the operation failed (bad input, refused dataset, unreadable file)
    kExitUsage = 2, ///< bad command line
    kExitCancelled = 130,
};

int runScan(const QStringList &args);
int runCheck(const QStringList &args);
int runSampleData(const QStringList &args);
int runTransform(const QStringList &args);
int runInspect(const QStringList &args);
int runRepair(const QStringList &args);
int runDiff(const QStringList &args);
int runTrain(const QStringList &args);
int runLrFind(const QStringList &args);
int runEval(const QStringList &args);
int runPredict(const QStringList &args);
int runExport(const QStringList &args);
int runMislabeled(const QStringList &args);
int runWeights(const QStringList &args);

/// The global --threads value; 0 = all cores.
int requestedThreads();
void setRequestedThreads(int threads);

/// Parses a command's args (args[0] is "ifstudio-cli <command>"). On a bad command line prints
/// the error with a pointer to the command's --help and returns kExitUsage; on --help prints the
/// help, whose usage line names "ifstudio-cli <command>" (not the helper executable), and returns
/// kExitOk; otherwise returns -1: go on.
int parseCommandLine(QCommandLineParser &parser, const QStringList &args);
/// -h, --help, for every command's parser.
QCommandLineOption helpOption();

/// "ifstudio-cli: <message>" on stderr.
void printError(const QString &message);
/// A line on stdout / stderr (UTF-8).
void printOut(const QString &text);
void printErr(const QString &text);
/// Writes raw bytes to stdout.
void writeOut(const QByteArray &bytes);

/// A one-line progress bar on stderr when it is a terminal; otherwise (a log) a plain line at
/// every 10% once the work has taken more than 3 s.
class ProgressLine
{
public:
    explicit ProgressLine(QString label);
    ~ProgressLine();
    void update(qint64 done, qint64 total); ///< throttled to ~10 Hz, thread-safe
    void finish();

private:
    struct Private;
    Private *d;
};

} // namespace ifs::cli
