#include "testutil.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QProcess>

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

bool writeFile(const QString &path, const QByteArray &bytes)
{
    QDir().mkpath(QFileInfo(path).absolutePath());
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Truncate))
        return false;
    return file.write(bytes) == bytes.size();
}

} // namespace ifs::test
