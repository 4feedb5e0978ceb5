#pragma once

#include <QByteArray>
#include <QString>
#include <QStringList>

namespace ifs::test {

/// The Python that has torch and torchvision: the oracle.
QString oraclePython();
/// tests/tools/<name>
QString toolPath(const QString &name);
/// The built ifstudio-cli.
QString cliPath();

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

/// Writes bytes to a file, creating parent folders.
bool writeFile(const QString &path, const QByteArray &bytes);

} // namespace ifs::test
