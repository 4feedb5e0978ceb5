#include "training/distributed.h"

#include "base/atomicfile.h"

#include <QDateTime>
#include <QJsonDocument>
#include <QJsonObject>

namespace ifs {

namespace {

/// An integer variable of torchrun's, or an error naming it.
Result<int> intVariable(const QProcessEnvironment &env, const QString &name, int minimum)
{
    if (!env.contains(name))
        return Error{QStringLiteral("%1 is not set, but other torchrun variables are (RANK, "
                                    "WORLD_SIZE, MASTER_ADDR, MASTER_PORT): start every process "
                                    "with torchrun, or set all four")
                         .arg(name)};
    bool ok = false;
    const int value = env.value(name).trimmed().toInt(&ok);
    if (!ok || value < minimum)
        return Error{QStringLiteral("%1 is “%2”: expected an integer of at least %3")
                         .arg(name, env.value(name))
                         .arg(minimum)};
    return value;
}

} // namespace

Result<std::optional<DistEnv>> DistEnv::fromEnvironment(const QProcessEnvironment &environment)
{
    const QStringList required{QStringLiteral("RANK"), QStringLiteral("WORLD_SIZE"),
                               QStringLiteral("MASTER_ADDR"), QStringLiteral("MASTER_PORT")};
    bool any = false;
    for (const QString &name : required)
        any = any || environment.contains(name);
    if (!any)
        return std::optional<DistEnv>();
    DistEnv env;
    auto world = intVariable(environment, QStringLiteral("WORLD_SIZE"), 1);
    if (!world)
        return world.error();
    auto rank = intVariable(environment, QStringLiteral("RANK"), 0);
    if (!rank)
        return rank.error();
    auto port = intVariable(environment, QStringLiteral("MASTER_PORT"), 1);
    if (!port)
        return port.error();
    if (rank.value() >= world.value())
        return Error{QStringLiteral("RANK is %1 but WORLD_SIZE is %2: ranks run from 0 to %3")
                         .arg(rank.value())
                         .arg(world.value())
                         .arg(world.value() - 1)};
    if (port.value() > 65535)
        return Error{QStringLiteral("MASTER_PORT is %1: not a TCP port").arg(port.value())};
    env.masterAddr = environment.value(QStringLiteral("MASTER_ADDR")).trimmed();
    if (env.masterAddr.isEmpty())
        return Error{QStringLiteral("MASTER_ADDR is empty: set it to the host of rank 0")};
    env.worldSize = world.value();
    env.rank = rank.value();
    env.masterPort = quint16(port.value());
    // The rest have torchrun's meaning when set and a single machine's when not.
    env.localRank
        = environment.value(QStringLiteral("LOCAL_RANK"), QString::number(env.rank)).toInt();
    env.localWorldSize
        = environment.value(QStringLiteral("LOCAL_WORLD_SIZE"), QString::number(env.worldSize))
              .toInt();
    env.restartCount = environment.value(QStringLiteral("TORCHELASTIC_RESTART_COUNT")).toInt();
    env.agentStore = environment.value(QStringLiteral("TORCHELASTIC_USE_AGENT_STORE"))
        == QStringLiteral("True");
    env.errorFile = environment.value(QStringLiteral("TORCHELASTIC_ERROR_FILE"));
    // As PyTorch's binding reads it: a name of more than one character, comma-separated.
    const QString interfaces = environment.value(QStringLiteral("GLOO_SOCKET_IFNAME"));
    if (interfaces.size() > 1)
        env.glooInterfaces = interfaces.split(u',', Qt::SkipEmptyParts);
    return std::optional<DistEnv>(env);
}

std::vector<int> evaluationShard(qsizetype n, int rank, int worldSize)
{
    std::vector<int> shard;
    for (qsizetype i = rank; i < n; i += worldSize)
        shard.push_back(int(i));
    return shard;
}

std::vector<std::vector<int>> bucketAssignmentBySize(const std::vector<qint64> &bytes,
                                                     const std::vector<qint64> &limits,
                                                     const std::vector<int> &order)
{
    std::vector<std::vector<int>> buckets;
    std::vector<int> open;
    qint64 size = 0;
    size_t limit = 0;
    for (const int index : order) {
        open.push_back(index);
        size += bytes[size_t(index)];
        if (!limits.empty() && size >= limits[limit]) {
            buckets.push_back(std::move(open));
            open.clear();
            size = 0;
            limit = std::min(limit + 1, limits.size() - 1);
        }
    }
    if (!open.empty())
        buckets.push_back(std::move(open));
    return buckets;
}

void writeElasticError(const QString &errorFile, const QString &message)
{
    if (errorFile.isEmpty())
        return;
    QJsonObject error;
    error.insert(QStringLiteral("message"), message);
    error.insert(QStringLiteral("timestamp"), QDateTime::currentSecsSinceEpoch());
    // Best effort: the run is failing already, and the message also goes to stderr.
    (void)writeFileAtomically(errorFile, QJsonDocument(error).toJson(QJsonDocument::Compact));
}

} // namespace ifs
