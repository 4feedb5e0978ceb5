#include "testutil.h"

#include "base/filenames.h"
#include "dataset/sampledata.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>

#include <csignal>

#include <fcntl.h>
#include <filesystem>
#include <sys/resource.h>
#include <unistd.h>

namespace ifs::test {

QString oraclePython()
{
    return QStringLiteral(IFS_ORACLE_PYTHON);
}

QString toolPath(const QString &name)
{
    return QStringLiteral(IFS_TOOLS_DIR) + u'/' + name;
}

QString cliPath()
{
    return QStringLiteral(IFS_CLI_PATH);
}

QString guiPath()
{
#ifdef IFS_GUI_PATH
    return QStringLiteral(IFS_GUI_PATH);
#else
    return {};
#endif
}

ProcessResult runProcess(const QString &program, const QStringList &args, int timeoutMs)
{
    QProcess process;
    process.start(program, args);
    ProcessResult result;
    if (!process.waitForStarted(30000)) {
        result.err = process.errorString().toUtf8();
        return result;
    }
    process.closeWriteChannel();
    if (!process.waitForFinished(timeoutMs)) {
        process.kill();
        process.waitForFinished();
        result.err = "timed out";
        result.crashed = true;
    }
    result.out = process.readAllStandardOutput();
    result.err += process.readAllStandardError();
    result.crashed = result.crashed || process.exitStatus() == QProcess::CrashExit;
    result.exitCode = process.exitCode();
    return result;
}

ProcessResult runOracle(const QString &script, const QStringList &args, int timeoutMs)
{
    return runProcess(oraclePython(), QStringList{toolPath(script)} + args, timeoutMs);
}

ProcessResult runCli(const QStringList &args, int timeoutMs)
{
    return runProcess(cliPath(), args, timeoutMs);
}

FileSizeLimit::FileSizeLimit(qint64 bytes)
{
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    if (getrlimit(RLIMIT_FSIZE, &limit) != 0)
        return;
    m_saved = limit.rlim_cur;
    limit.rlim_cur = rlim_t(bytes);
    m_active = setrlimit(RLIMIT_FSIZE, &limit) == 0;
}

FileSizeLimit::~FileSizeLimit()
{
    rlimit limit{};
    if (m_active && getrlimit(RLIMIT_FSIZE, &limit) == 0) {
        limit.rlim_cur = rlim_t(m_saved);
        setrlimit(RLIMIT_FSIZE, &limit);
    }
}

bool writeFile(const QString &path, const QByteArray &bytes)
{
    if (hasEscapedBytes(path)) {
        // A name with undecodable bytes (base/filenames.h): made by its bytes.
        const QByteArray name = encodeFileName(path);
        std::error_code error;
        std::filesystem::create_directories(std::filesystem::path(name.toStdString()).parent_path(),
                                            error);
        const int fd = ::open(name.constData(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
            return false;
        const bool written = ::write(fd, bytes.constData(), size_t(bytes.size())) == bytes.size();
        return ::close(fd) == 0 && written;
    }
    QDir().mkpath(QFileInfo(path).absolutePath());
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return false;
    return file.write(bytes) == bytes.size();
}

void removeTree(const QString &path)
{
    std::error_code error;
    std::filesystem::remove_all(std::filesystem::path(encodeFileName(path).toStdString()), error);
}

namespace {

QByteArray bigEndian(quint32 value)
{
    QByteArray bytes(4, Qt::Uninitialized);
    for (int i = 0; i < 4; ++i)
        bytes[i] = char((value >> (24 - 8 * i)) & 0xff);
    return bytes;
}

/// One set: images of 28×28 where class k is a bright bar at a class-specific place and angle
/// (horizontal for even k, vertical for odd) over low noise; labels cycle 0..9 as the real
/// files' do not, which no test may rely on.
std::pair<QByteArray, QByteArray> syntheticSet(int perClass, quint32 seed)
{
    const quint32 count = quint32(perClass) * 10;
    QByteArray images = bigEndian(0x803) + bigEndian(count) + bigEndian(28) + bigEndian(28);
    QByteArray labels = bigEndian(0x801) + bigEndian(count);
    quint32 state = seed;
    const auto noise = [&state] {
        state = state * 1664525u + 1013904223u; // a fixed LCG: the same files on every machine
        return int(state >> 27); // 0..31
    };
    for (quint32 i = 0; i < count; ++i) {
        const int label = int(i % 10);
        labels.append(char(label));
        const int place = 3 + (label / 2) * 5 + noise() % 2;
        for (int y = 0; y < 28; ++y) {
            for (int x = 0; x < 28; ++x) {
                const int along = label % 2 == 0 ? y : x;
                const bool bar = along >= place && along < place + 3;
                images.append(char(bar ? 200 + noise() : noise()));
            }
        }
    }
    return {images, labels};
}

} // namespace

bool writeSyntheticFashionMnist(const QString &dir, int perClass)
{
    const auto [trainImages, trainLabels] = syntheticSet(perClass, 1);
    const auto [testImages, testLabels] = syntheticSet(perClass, 2);
    return writeFile(dir + u"/train-images-idx3-ubyte", trainImages)
        && writeFile(dir + u"/train-labels-idx1-ubyte", trainLabels)
        && writeFile(dir + u"/t10k-images-idx3-ubyte", testImages)
        && writeFile(dir + u"/t10k-labels-idx1-ubyte", testLabels);
}

QString fashionMnistSource(const QString &scratch, int perClass)
{
    // IFS_TEST_SYNTHETIC_FASHION_MNIST=1 tries the stand-in where the real files are installed.
    const bool forceSynthetic = qEnvironmentVariableIntValue("IFS_TEST_SYNTHETIC_FASHION_MNIST");
    if (!forceSynthetic && missingFashionMnistFiles(defaultFashionMnistSource()).isEmpty()) {
        qInfo("Fashion-MNIST: Debian's dataset-fashion-mnist in %s",
              qPrintable(defaultFashionMnistSource()));
        return defaultFashionMnistSource();
    }
    const QString dir = scratch + u"/synthetic-fashion-mnist";
    if (!writeSyntheticFashionMnist(dir, perClass))
        return {};
    qInfo("Fashion-MNIST: not used; a synthetic stand-in with %d images per class in "
          "%s (installer/setup.sh installs the real one)",
          perClass, qPrintable(dir));
    return dir;
}

} // namespace ifs::test
