#include "training/localranks.h"

#include <QDeadlineTimer>
#include <QDir>
#include <QHostAddress>
#include <QProcess>
#include <QRegularExpression>
#include <QTcpServer>
#include <QThread>

#include <algorithm>

namespace ifs {

namespace {

/// The shortest text that reads back as `v` (what the other ranks compare must be equal).
QString number(double v)
{
    for (int digits = 6; digits < 17; ++digits) {
        const QString text = QString::number(v, 'g', digits);
        if (text.toDouble() == v)
            return text;
    }
    return QString::number(v, 'g', 17);
}

/// How long the ranks the app starts wait for each other: short, since they run side by side
/// (a rank that could not start makes the others give up within this, not in 5 minutes).
constexpr int kLocalTimeoutSeconds = 120;

/// A TCP port nothing on the loopback listens on now.
quint16 freeLoopbackPort()
{
    QTcpServer server;
    return server.listen(QHostAddress::LocalHost, 0) ? server.serverPort() : 0;
}

} // namespace

QStringList trainCommandArguments(const TrainConfig &c)
{
    QStringList a;
    const auto add = [&a](const char *name, const QString &value) {
        a << QStringLiteral("--%1").arg(QLatin1String(name)) << value;
    };
    const auto addIf = [&add](const char *name, const QString &value) {
        if (!value.isEmpty())
            add(name, value);
    };
    add("data", QDir::toNativeSeparators(c.dataRoot));
    addIf("val", QDir::toNativeSeparators(c.valRoot));
    add("val-split", number(c.valSplit));
    add("out", QDir::toNativeSeparators(c.outDir));
    add("model", c.arch);
    addIf("weights", c.weightsPath);
    if (!c.pretrained.isEmpty())
        a << QStringLiteral("--pretrained=%1").arg(c.pretrained);
    add("finetune", finetuneName(c.finetune));
    add("unfreeze-epoch", QString::number(c.unfreezeEpoch));
    add("backbone-lr-factor", number(c.backboneLrFactor));
    if (!c.cacheFeatures)
        a << QStringLiteral("--no-feature-cache");
    add("epochs", QString::number(c.epochs));
    add("batch-size", QString::number(c.batchSize));
    add("optimizer", optimizerName(c.optimizer));
    add("lr", number(c.lr));
    add("momentum", number(c.momentum));
    if (c.nesterov)
        a << QStringLiteral("--nesterov");
    add("weight-decay", number(c.weightDecay));
    add("schedule", scheduleName(c.schedule));
    add("warmup", number(c.warmupEpochs));
    add("step-epochs", QString::number(c.stepEpochs));
    add("gamma", number(c.stepGamma));
    add("label-smoothing", number(c.labelSmoothing));
    if (c.gradClipNorm > 0)
        add("clip-grad", number(c.gradClipNorm));
    add("class-weights", classWeightingName(c.classWeighting));
    add("sampler", samplerName(c.sampler));
    add("early-stopping", earlyStopName(c.earlyStopping));
    add("patience", QString::number(c.patience));
    add("min-delta", number(c.minDelta));
    add("seed", QString::number(c.seed));
    add("device", c.device);
    add("amp", ampName(c.amp));
    add("memory-format", memoryFormatName(c.memoryFormat));
    if (c.workers > 0)
        add("workers", QString::number(c.workers));
    if (c.threads > 0)
        add("threads", QString::number(c.threads));
    addIf("train-transforms", c.trainTransforms);
    addIf("val-transforms", c.valTransforms);
    if (c.saveEveryEpochs > 0)
        add("save-every", QString::number(c.saveEveryEpochs));
    if (!c.resumePath.isEmpty()) {
        add("resume", c.resumePath);
        if (c.resumeWeightsOnly)
            a << QStringLiteral("--weights-only");
    }
    if (c.maxSteps > 0)
        add("max-steps", QString::number(c.maxSteps));
    return a;
}

QString shellCommandLine(const QStringList &args)
{
    static const QRegularExpression plain(QStringLiteral("^[A-Za-z0-9_./:=,+@%-]+$"));
    QStringList words;
    for (const QString &arg : args) {
        if (plain.match(arg).hasMatch())
            words << arg;
        else
            words << u'\'' + QString(arg).replace(u'\'', QStringLiteral("'\\''")) + u'\'';
    }
    return words.join(u' ');
}

QString torchrunCommand(const TrainConfig &config, int processesPerNode, int nodes)
{
    TrainConfig c = config;
    c.threads = 0; // each machine's own share (OMP_NUM_THREADS)
    c.workers = 0;
    QStringList words{QStringLiteral("torchrun"), QStringLiteral("-r"), QStringLiteral("2"),
                      QStringLiteral("-t"), QStringLiteral("2")};
    if (nodes > 1)
        words << QStringLiteral("--nnodes=%1").arg(nodes) << QStringLiteral("--rdzv_backend=c10d")
              << QStringLiteral("--rdzv_endpoint=NODE0_HOST:29400")
              << QStringLiteral("--rdzv_id=ifstudio");
    else
        words << QStringLiteral("--standalone");
    words << QStringLiteral("--nproc_per_node=%1").arg(processesPerNode)
          << QStringLiteral("--no_python") << QStringLiteral("ifstudio-cli")
          << QStringLiteral("train");
    return shellCommandLine(words + trainCommandArguments(c));
}

Result<std::unique_ptr<LocalRanks>> LocalRanks::start(TrainConfig &config, int processes,
                                                      const QString &cli)
{
    std::unique_ptr<LocalRanks> self(new LocalRanks);
    const quint16 port = freeLoopbackPort();
    if (port == 0)
        return Error{QStringLiteral("no free TCP port on the loopback for the %1 processes to "
                                    "meet on")
                         .arg(processes)};
    const int share = std::max(1, QThread::idealThreadCount() / processes);
    config.threads = share;
    config.workers = share;
    DistEnv env;
    env.worldSize = processes;
    env.localWorldSize = processes;
    env.masterAddr = QStringLiteral("127.0.0.1");
    env.masterPort = port;
    env.glooInterfaces = {QStringLiteral("lo")};
    env.timeoutSeconds = kLocalTimeoutSeconds;
    self->m_rankZero = env;
    const QStringList args = QStringList{QStringLiteral("train")} + trainCommandArguments(config)
        + QStringList{QStringLiteral("--dist-timeout"), QString::number(kLocalTimeoutSeconds)};
    for (int r = 1; r < processes; ++r) {
        auto process = std::make_unique<QProcess>();
        QProcessEnvironment environment = QProcessEnvironment::systemEnvironment();
        environment.insert(QStringLiteral("RANK"), QString::number(r));
        environment.insert(QStringLiteral("LOCAL_RANK"), QString::number(r));
        environment.insert(QStringLiteral("WORLD_SIZE"), QString::number(processes));
        environment.insert(QStringLiteral("LOCAL_WORLD_SIZE"), QString::number(processes));
        environment.insert(QStringLiteral("MASTER_ADDR"), env.masterAddr);
        environment.insert(QStringLiteral("MASTER_PORT"), QString::number(port));
        environment.insert(QStringLiteral("GLOO_SOCKET_IFNAME"), QStringLiteral("lo"));
        process->setProcessEnvironment(environment);
        process->setProcessChannelMode(QProcess::SeparateChannels);
        process->start(cli, args);
        if (!process->waitForStarted(30000))
            return Error{QStringLiteral("cannot start rank %1 (“%2”): %3")
                             .arg(r)
                             .arg(cli, process->errorString())};
        self->m_processes.push_back(std::move(process));
    }
    return self;
}

LocalRanks::~LocalRanks()
{
    finish(0);
}

void LocalRanks::finish(int milliseconds)
{
    // One deadline for all of them, then those left are killed together.
    const QDeadlineTimer deadline(milliseconds);
    for (auto &process : m_processes) {
        if (process->state() != QProcess::NotRunning)
            process->waitForFinished(int(std::max<qint64>(0, deadline.remainingTime())));
    }
    for (size_t i = 0; i < m_processes.size(); ++i) {
        QProcess &process = *m_processes[i];
        if (process.state() == QProcess::NotRunning)
            continue;
        process.kill();
        m_killed.push_back(int(i) + 1);
    }
    for (auto &process : m_processes)
        process->waitForFinished(5000);
}

QString LocalRanks::failures() const
{
    QStringList lines;
    for (size_t i = 0; i < m_processes.size(); ++i) {
        QProcess &process = *m_processes[i];
        if (std::find(m_killed.begin(), m_killed.end(), int(i) + 1) != m_killed.end()) {
            lines << QStringLiteral("rank %1 did not end with rank 0 and was stopped").arg(i + 1);
            continue;
        }
        if (process.state() != QProcess::NotRunning
            || (process.exitStatus() == QProcess::NormalExit && process.exitCode() == 0))
            continue;
        const QString err = QString::fromLocal8Bit(process.readAllStandardError()).trimmed();
        lines << QStringLiteral("rank %1: %2")
                     .arg(i + 1)
                     .arg(err.isEmpty()
                              ? QStringLiteral("exited with code %1").arg(process.exitCode())
                              : err.section(u'\n', -3));
    }
    return lines.join(u'\n');
}

} // namespace ifs
