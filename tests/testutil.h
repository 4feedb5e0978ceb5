#pragma once

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace ifs::test {

/// The Python that has torch and torchvision: the oracle.
QString oraclePython();
/// tests/tools/<name>
QString toolPath(const QString &name);
/// The built ifstudio-cli. A suite that runs it says so in tests/CMakeLists.txt (RUNS), so
/// that CTest builds it first; other suites do not wait for it.
QString cliPath();
/// The built ifstudio (the GUI); empty when the build has no GUI (IFS_BUILD_GUI=OFF).
QString guiPath();

struct ProcessResult
{
    int exitCode = -1;
    bool crashed = false;
    QByteArray out;
    QByteArray err;
};

/// Runs a program to completion (timeout in ms) and returns what it printed.
ProcessResult runProcess(const QString &program, const QStringList &args, int timeoutMs = 120000);
/// Runs tests/tools/<script> with the oracle Python.
ProcessResult runOracle(const QString &script, const QStringList &args, int timeoutMs = 120000);
/// Runs ifstudio-cli.
ProcessResult runCli(const QStringList &args, int timeoutMs = 120000);

/// Writes bytes to a file, creating parent folders. A path with escaped bytes (base/filenames.h,
/// e.g. decodeFileName("a/\xff.jpg")) names the file by those bytes.
bool writeFile(const QString &path, const QByteArray &bytes);

/// A full disk, as the system reports it to a writer: while it lives, this process cannot grow
/// a file past `bytes` (RLIMIT_FSIZE); such a write fails with EFBIG ("File too large"), as one
/// on a full disk fails with ENOSPC. SIGXFSZ is ignored from then on, so that the write fails
/// instead of the signal ending the process. Child processes started meanwhile inherit both.
class FileSizeLimit
{
public:
    explicit FileSizeLimit(qint64 bytes);
    ~FileSizeLimit();
    FileSizeLimit(const FileSizeLimit &) = delete;
    FileSizeLimit &operator=(const FileSizeLimit &) = delete;
    bool isActive() const { return m_active; }

private:
    quint64 m_saved = 0;
    bool m_active = false;
};
/// Removes a folder and all it holds, by the names' bytes: QDir::removeRecursively() (and so
/// QTemporaryDir) cannot remove names that are not valid UTF-8. Call it before such a
/// QTemporaryDir goes.
void removeTree(const QString &path);

/// Fashion-MNIST's IDX files for a suite that trains or browses real images: Debian's
/// dataset-fashion-mnist when it is installed, else a small stand-in written into `scratch`
/// (`perClass` images of each of the 10 classes in both sets, 28×28, each class a different
/// learnable pattern with noise), so that the suite runs instead of skipping. Returns the folder
/// to pass as SampleDataOptions::source; says on the log which one it is.
/// IFS_TEST_SYNTHETIC_FASHION_MNIST=1 in the environment picks the stand-in in any case.
QString fashionMnistSource(const QString &scratch, int perClass = 100);

/// Writes the stand-in of fashionMnistSource() into `dir`: the four plain IDX files.
bool writeSyntheticFashionMnist(const QString &dir, int perClass);

} // namespace ifs::test
