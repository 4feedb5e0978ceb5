// Data-parallel training under torchrun: the sampler and DDP's buckets against PyTorch's own,
// the environment torchrun sets, and real runs of ifstudio-cli under Debian's torchrun (Gloo on
// the loopback) against a Python DistributedDataParallel script, against a single process with
// the doubled batch, with mismatched settings, a rank that dies, one that hangs, and a restart.

#include "testutil.h"

#include "dataset/sampledata.h"
#include "training/distributed.h"
#include "transforms/batchloader.h"

#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QProcess>
#include <QStandardPaths>
#include <QTcpServer>
#include <QTemporaryDir>
#include <QTest>
#include <QThread>

#include <csignal>

using namespace Qt::StringLiterals;
using namespace ifs;
using namespace ifs::test;

namespace {

const QString kTransform = u"transforms.Compose([transforms.ToTensor(), "
                           "transforms.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])"_s;

QJsonValue oracleJson(const QStringList &args, int timeoutMs = 300000)
{
    const ProcessResult r = runOracle(u"ddp_oracle.py"_s, args, timeoutMs);
    if (r.exitCode != 0) {
        qWarning("ddp_oracle.py %s: %s", qPrintable(args.join(u' ')), r.err.constData());
        return {};
    }
    const QJsonDocument doc = QJsonDocument::fromJson(r.out);
    return doc.isArray() ? QJsonValue(doc.array()) : QJsonValue(doc.object());
}

/// A TCP port nothing listens on now (the kernel's choice).
quint16 freePort()
{
    QTcpServer server;
    if (!server.listen(QHostAddress::LocalHost, 0))
        return 0;
    return server.serverPort();
}

/// A run folder's CSV file (steps.csv, metrics.csv), header first, each line split into cells;
/// empty while the file does not exist.
QList<QStringList> csvTable(const QString &runDir, const QString &name)
{
    QFile f(runDir + u'/' + name);
    QList<QStringList> table;
    if (f.open(QIODevice::ReadOnly)) {
        for (const QString &line : QString::fromUtf8(f.readAll()).split(u'\n', Qt::SkipEmptyParts))
            table.append(line.split(u','));
    }
    return table;
}

QList<double> stepLosses(const QString &runDir)
{
    QList<double> losses;
    for (const QStringList &row : csvTable(runDir, u"steps.csv"_s).mid(1))
        losses.append(row.value(2).toDouble());
    return losses;
}

int metricsRows(const QString &runDir)
{
    return int(std::max<qsizetype>(0, csvTable(runDir, u"metrics.csv"_s).size() - 1));
}

/// A torchrun job of ifstudio-cli train, running in the background.
class TorchrunJob
{
public:
    /// `launch`: torchrun's options before --no_python.
    TorchrunJob(const QStringList &launch, const QStringList &trainArgs,
                const QStringList &extraEnv = {})
    {
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(u"GLOO_SOCKET_IFNAME"_s, u"lo"_s);
        for (const QString &kv : extraEnv)
            env.insert(kv.section(u'=', 0, 0), kv.section(u'=', 1));
        m_process.setProcessEnvironment(env);
        // Debian's torchrun under Python 3.11 needs explicit redirects (pytorch#92319).
        m_process.start(u"torchrun"_s,
                        QStringList{u"-r"_s, u"2"_s, u"-t"_s, u"2"_s} + launch
                            + QStringList{u"--no_python"_s, cliPath(), u"train"_s} + trainArgs);
    }
    ~TorchrunJob()
    {
        if (m_process.state() != QProcess::NotRunning) {
            for (const qint64 pid : workers()) {
                ::kill(pid_t(pid), SIGCONT);
                ::kill(pid_t(pid), SIGKILL);
            }
            m_process.kill();
            m_process.waitForFinished(30000);
        }
    }
    bool started() { return m_process.waitForStarted(30000); }
    bool finish(int timeoutMs)
    {
        const bool done = m_process.waitForFinished(timeoutMs);
        m_out += m_process.readAllStandardOutput();
        m_err += m_process.readAllStandardError();
        return done;
    }
    int exitCode() const { return m_process.exitCode(); }
    QString output() const { return QString::fromUtf8(m_out + m_err); }
    /// The worker processes, by rank (torchrun's children; RANK in their environment).
    QMap<int, qint64> workersByRank() const
    {
        QMap<int, qint64> ranks;
        for (const qint64 pid : workers()) {
            QFile env(u"/proc/%1/environ"_s.arg(pid));
            if (!env.open(QIODevice::ReadOnly))
                continue;
            for (const QByteArray &kv : env.readAll().split('\0')) {
                if (kv.startsWith("RANK="))
                    ranks.insert(kv.mid(5).toInt(), pid);
            }
        }
        return ranks;
    }

private:
    QList<qint64> workers() const
    {
        QList<qint64> pids;
        const QString children = u"/proc/%1/task/%1/children"_s.arg(m_process.processId());
        QFile f(children);
        if (f.open(QIODevice::ReadOnly)) {
            for (const QByteArray &pid : f.readAll().trimmed().split(' '))
                if (!pid.isEmpty())
                    pids.append(pid.toLongLong());
        }
        return pids;
    }

    QProcess m_process;
    QByteArray m_out, m_err;
};

/// Waits (polling) until `condition` holds or `timeoutMs` passes.
template<typename F>
bool waitFor(F condition, int timeoutMs)
{
    QElapsedTimer timer;
    timer.start();
    while (!condition()) {
        if (timer.elapsed() > timeoutMs)
            return false;
        QThread::msleep(50);
    }
    return true;
}

} // namespace

class TestDistributed : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_data; ///< a Fashion-MNIST subset: train/ and val/
    QString m_init; ///< torchvision's resnet18 for 10 classes, seed 0

    QStringList resnetArgs(const QString &out, int batch, int epochs) const
    {
        return {u"--data"_s,
                m_data + u"/train"_s,
                u"--val-split"_s,
                u"0"_s,
                u"--out"_s,
                out,
                u"--model"_s,
                u"resnet18"_s,
                u"--weights"_s,
                m_init,
                u"--epochs"_s,
                QString::number(epochs),
                u"--batch-size"_s,
                QString::number(batch),
                u"--lr"_s,
                u"0.05"_s,
                u"--schedule"_s,
                u"constant"_s,
                u"--amp"_s,
                u"off"_s,
                u"--memory-format"_s,
                u"contiguous"_s,
                u"--train-transforms"_s,
                kTransform,
                u"--val-transforms"_s,
                kTransform};
    }
    static QStringList rendezvous(int processes)
    {
        // c10d rendezvous on a port the kernel picks: tests may run side by side.
        return {u"--nproc_per_node=%1"_s.arg(processes), u"--rdzv_backend=c10d"_s,
                u"--rdzv_endpoint=localhost:0"_s};
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        if (QStandardPaths::findExecutable(u"torchrun"_s).isEmpty())
            QSKIP("torchrun (python3-torch) is not installed");
        SampleDataOptions options;
        options.source = fashionMnistSource(m_dir.path(), 32);
        options.limitPerClass = 32;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
        m_init = m_dir.filePath(u"init.pth"_s);
        const ProcessResult r
            = runOracle(u"ddp_oracle.py"_s, {u"init"_s, u"resnet18"_s, u"10"_s, m_init});
        QVERIFY2(r.exitCode == 0, r.err.constData());
    }

    void samplerMatchesDistributedSampler()
    {
        QJsonArray cases;
        for (const int n : {1, 7, 10, 64, 1000})
            for (const int world : {1, 2, 3, 4})
                for (const bool shuffle : {true, false})
                    for (const bool dropLast : {false, true})
                        cases.append(QJsonArray{n, world, n % 5 + 3, world + 1, shuffle, dropLast});
        const QJsonArray expected
            = oracleJson({u"sampler"_s,
                          QString::fromUtf8(QJsonDocument(cases).toJson(QJsonDocument::Compact))})
                  .toArray();
        QCOMPARE(expected.size(), cases.size());
        for (qsizetype c = 0; c < cases.size(); ++c) {
            const QJsonArray k = cases[c].toArray();
            for (int r = 0; r < k[1].toInt(); ++r) {
                const std::vector<int> ours = distributedSamplerIndices(
                    k[0].toInt(), r, k[1].toInt(), k[4].toBool(), uint64_t(k[2].toInt()),
                    k[3].toInt(), k[5].toBool());
                QJsonArray oursJson;
                for (const int i : ours)
                    oursJson.append(i);
                QVERIFY2(oursJson == expected[c].toArray()[r].toArray(),
                         qPrintable(u"case %1 rank %2"_s.arg(c).arg(r)));
            }
        }
    }

    void bucketsMatchDdp_data()
    {
        QTest::addColumn<QString>("arch");
        QTest::newRow("resnet18") << u"resnet18"_s;
        QTest::newRow("mobilenet_v2") << u"mobilenet_v2"_s;
    }
    void bucketsMatchDdp()
    {
        QFETCH(QString, arch);
        const QJsonObject expected = oracleJson({u"buckets"_s, arch, u"10"_s}).toObject();
        std::vector<qint64> bytes;
        for (const QJsonValue &b : expected[u"bytes"_s].toArray())
            bytes.push_back(b.toInteger());
        QVERIFY(bytes.size() > 10);
        std::vector<int> forward(bytes.size()), reversed(bytes.size());
        for (size_t i = 0; i < bytes.size(); ++i) {
            forward[i] = int(i);
            reversed[i] = int(bytes.size() - 1 - i);
        }
        const auto json = [](const std::vector<std::vector<int>> &buckets) {
            QJsonArray out;
            for (const auto &bucket : buckets) {
                QJsonArray b;
                for (const int i : bucket)
                    b.append(i);
                out.append(b);
            }
            return out;
        };
        const std::vector<qint64> limits{1024 * 1024, 25 * 1024 * 1024};
        QCOMPARE(json(bucketAssignmentBySize(bytes, limits, forward)),
                 expected[u"first"_s].toArray());
        QCOMPARE(json(bucketAssignmentBySize(bytes, limits, reversed)),
                 expected[u"reversed"_s].toArray());
        QCOMPARE(json(bucketAssignmentBySize(bytes, {std::numeric_limits<qint64>::max()}, forward)),
                 expected[u"single"_s].toArray());
    }

    void environmentAsTorchrunSetsIt()
    {
        QProcessEnvironment none;
        auto nothing = DistEnv::fromEnvironment(none);
        QVERIFY(nothing && !nothing->has_value());

        QProcessEnvironment agent;
        for (const auto &[k, v] : {std::pair{"RANK", "1"},
                                   {"LOCAL_RANK", "1"},
                                   {"WORLD_SIZE", "4"},
                                   {"LOCAL_WORLD_SIZE", "2"},
                                   {"MASTER_ADDR", "127.0.0.1"},
                                   {"MASTER_PORT", "29500"},
                                   {"TORCHELASTIC_RESTART_COUNT", "2"},
                                   {"TORCHELASTIC_USE_AGENT_STORE", "True"},
                                   {"GLOO_SOCKET_IFNAME", "lo,eth0"}})
            agent.insert(QString::fromLatin1(k), QString::fromLatin1(v));
        auto env = DistEnv::fromEnvironment(agent);
        QVERIFY(env && env->has_value());
        const DistEnv &e = *env.value();
        QCOMPARE(e.rank, 1);
        QCOMPARE(e.worldSize, 4);
        QCOMPARE(e.localWorldSize, 2);
        QCOMPARE(e.masterPort, quint16(29500));
        QCOMPARE(e.restartCount, 2);
        QVERIFY(e.agentStore);
        QCOMPARE(e.glooInterfaces, (QStringList{u"lo"_s, u"eth0"_s}));

        agent.remove(u"MASTER_PORT"_s);
        auto partial = DistEnv::fromEnvironment(agent);
        QVERIFY(!partial);
        QVERIFY2(partial.errorMessage().contains(u"MASTER_PORT is not set"_s),
                 qPrintable(partial.errorMessage()));
        agent.insert(u"MASTER_PORT"_s, u"29500"_s);
        agent.insert(u"RANK"_s, u"4"_s);
        auto outside = DistEnv::fromEnvironment(agent);
        QVERIFY(!outside);
        QVERIFY2(outside.errorMessage().contains(u"RANK is 4 but WORLD_SIZE is 4"_s),
                 qPrintable(outside.errorMessage()));
    }

    /// Two ranks of ours under torchrun's default (static) rendezvous, whose agent serves the
    /// store, against two ranks of Python's DistributedDataParallel on the same data, sampler,
    /// weights and optimizer: the same losses and final weights up to float summation.
    void twoRanksMatchPythonDdp()
    {
        const QString ours = m_dir.filePath(u"ours"_s);
        const QString theirs = m_dir.filePath(u"theirs.pth"_s);
        {
            TorchrunJob job({u"--nproc_per_node=2"_s, u"--master_port=%1"_s.arg(freePort())},
                            resnetArgs(ours, 16, 2));
            QVERIFY(job.started());
            QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
            QVERIFY2(job.output().contains(u"2 processes (Gloo over lo) × 16 images = global "
                                           "batch 32"_s),
                     qPrintable(job.output()));
        }
        QProcess python;
        QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
        env.insert(u"GLOO_SOCKET_IFNAME"_s, u"lo"_s);
        python.setProcessEnvironment(env);
        python.start(u"torchrun"_s,
                     {u"-r"_s, u"2"_s, u"-t"_s, u"2"_s, u"--nproc_per_node=2"_s,
                      u"--master_port=%1"_s.arg(freePort()), toolPath(u"ddp_oracle.py"_s),
                      u"peer"_s, m_data + u"/train"_s, m_init, theirs, u"resnet18"_s, u"16"_s,
                      u"2"_s, u"0.05"_s, u"0.9"_s, u"5e-4"_s, u"0"_s, kTransform});
        QVERIFY(python.waitForFinished(600000));
        QVERIFY2(python.exitCode() == 0, python.readAllStandardError().constData());

        QFile lossFile(theirs + u".json"_s);
        QVERIFY(lossFile.open(QIODevice::ReadOnly));
        const QJsonArray theirLosses
            = QJsonDocument::fromJson(lossFile.readAll()).object()[u"losses"_s].toArray();
        const QList<double> ourLosses = stepLosses(ours);
        QCOMPARE(ourLosses.size(), theirLosses.size());
        QCOMPARE(ourLosses.size(), 2 * (320 / 2 / 16)); // every rank's share, batches dropped
        for (qsizetype i = 0; i < ourLosses.size(); ++i)
            QVERIFY2(std::abs(ourLosses[i] - theirLosses[i].toDouble())
                         <= 1e-5 * std::abs(theirLosses[i].toDouble()),
                     qPrintable(u"step %1: %2 vs %3"_s.arg(i + 1)
                                    .arg(ourLosses[i])
                                    .arg(theirLosses[i].toDouble())));
        const QJsonObject cmp
            = oracleJson({u"compare"_s, ours + u"/last.pth"_s, theirs, m_init}).toObject();
        QVERIFY2(cmp[u"keys"_s].toBool(), "our checkpoint keeps the single-process keys");
        QVERIFY2(cmp[u"moved"_s].toDouble() > 0.05, "training changed the weights");
        QVERIFY2(cmp[u"max_rel_diff"_s].toDouble() < 1e-5,
                 qPrintable(QString::number(cmp[u"max_rel_diff"_s].toDouble())));
    }

    /// DDP's promise: the gradients of 2 ranks × 16 images averaged are the gradient of the
    /// 32 images in one process (DistributedSampler gives the one process the union), on a
    /// model without BatchNorm updates (head-only fine-tuning: the backbone frozen in eval).
    void twoRanksEqualOneRankWithTheDoubledBatch()
    {
        const QString two = m_dir.filePath(u"two"_s);
        const QString one = m_dir.filePath(u"one"_s);
        // Validation split over the ranks too, with an odd number of images (shards of 160
        // and 159).
        const QString val = m_dir.filePath(u"val-odd"_s);
        for (const QString &c :
             QDir(m_data + u"/val"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot)) {
            QVERIFY(QDir().mkpath(val + u'/' + c));
            const QStringList files = QDir(m_data + u"/val/"_s + c).entryList(QDir::Files);
            for (const QString &f : files.mid(c == u"Bag"_s ? 1 : 0))
                QVERIFY(QFile::copy(m_data + u"/val/"_s + c + u'/' + f, val + u'/' + c + u'/' + f));
        }
        const QStringList head{u"--finetune"_s, u"head"_s, u"--val"_s, val};
        {
            TorchrunJob job(rendezvous(2), resnetArgs(two, 16, 2) + head);
            QVERIFY(job.started());
            QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
        }
        {
            TorchrunJob job(rendezvous(1), resnetArgs(one, 32, 2) + head);
            QVERIFY(job.started());
            QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
        }
        const QList<double> twoLosses = stepLosses(two), oneLosses = stepLosses(one);
        QCOMPARE(twoLosses.size(), 20);
        QCOMPARE(oneLosses.size(), twoLosses.size());
        for (qsizetype i = 0; i < oneLosses.size(); ++i)
            QVERIFY2(std::abs(twoLosses[i] - oneLosses[i]) <= 1e-5 * std::abs(oneLosses[i]),
                     qPrintable(u"step %1"_s.arg(i + 1)));
        const QJsonObject cmp = oracleJson({u"compare"_s, two + u"/last.pth"_s,
                                            one + u"/last.pth"_s, m_init, u"fc."_s})
                                    .toObject();
        // The gathered validation equals one process's: the same accuracy and loss per epoch.
        const QList<QStringList> twoMetrics = csvTable(two, u"metrics.csv"_s),
                                 oneMetrics = csvTable(one, u"metrics.csv"_s);
        QCOMPARE(twoMetrics.size(), 3);
        QCOMPARE(oneMetrics.size(), 3);
        const int valAcc = int(twoMetrics[0].indexOf(u"val_acc"_s));
        const int valLoss = int(twoMetrics[0].indexOf(u"val_loss"_s));
        QVERIFY(valAcc > 0 && valLoss > 0);
        for (int e = 1; e <= 2; ++e) {
            QCOMPARE(twoMetrics[e][valAcc], oneMetrics[e][valAcc]);
            QVERIFY(std::abs(twoMetrics[e][valLoss].toDouble() - oneMetrics[e][valLoss].toDouble())
                    <= 1e-5 * oneMetrics[e][valLoss].toDouble());
        }
        QVERIFY2(cmp[u"moved"_s].toDouble() > 0.05, "the head trained");
        QVERIFY2(cmp[u"unmoved_others"_s].toBool(), "the frozen backbone stayed as it was");
        QVERIFY2(cmp[u"max_rel_diff"_s].toDouble() < 1e-5,
                 qPrintable(QString::number(cmp[u"max_rel_diff"_s].toDouble())));
    }

    /// A run saved by 2 processes resumes with 1: the weights and optimizer go on, and the
    /// schedule stands where a 1-process run of the same epochs stands (steps counted anew).
    void resumeWithAnotherWorldSize()
    {
        const auto cosine = [this](const QString &out, int epochs) {
            QStringList args = resnetArgs(out, 32, epochs);
            args[args.indexOf(u"--schedule"_s) + 1] = u"cosine"_s;
            return args;
        };
        const QString out = m_dir.filePath(u"regrouped"_s);
        const QString reference = m_dir.filePath(u"one-process"_s);
        {
            TorchrunJob job(rendezvous(2), cosine(out, 1));
            QVERIFY(job.started());
            QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
        }
        {
            TorchrunJob job(rendezvous(1), cosine(reference, 2));
            QVERIFY(job.started());
            QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
        }
        TorchrunJob job(rendezvous(1),
                        cosine(out, 2) + QStringList{u"--resume"_s, out + u"/last.pth"_s});
        QVERIFY(job.started());
        QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
        QVERIFY2(job.output().contains(u"last.pth was saved by 2 process(es) and this run has 1 "
                                       "process(es): the weights and the optimizer continue, and "
                                       "the schedule at epoch 2; batches now hold 32 images"_s),
                 qPrintable(job.output()));
        QCOMPARE(metricsRows(out), 2);
        // Epoch 1: 160 images per process in batches of 32; epoch 2: 320 in one process, with
        // the steps and rates of the 1-process run's epoch 2.
        const QList<QStringList> resumed = csvTable(out, u"steps.csv"_s).mid(1),
                                 fresh = csvTable(reference, u"steps.csv"_s).mid(1);
        QCOMPARE(resumed.size(), 5 + 10);
        QCOMPARE(fresh.size(), 20);
        for (int i = 0; i < 10; ++i) {
            const QStringList &a = resumed[5 + i], &b = fresh[10 + i];
            QCOMPARE(a[0], b[0]); // step
            QCOMPARE(a[3], b[3]); // learning rate
        }
    }

    /// Images that cannot be read leave some rank's batch empty at some step (batch size 1):
    /// that rank still takes part in the step, and the run ends normally on every rank.
    void unreadableImagesDoNotStallTheRanks()
    {
        const QString data = m_dir.filePath(u"with-broken"_s);
        QVERIFY(QDir().mkpath(data));
        const QStringList classes
            = QDir(m_data + u"/train"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot);
        for (const QString &c : classes.mid(0, 2)) {
            QVERIFY(QDir().mkpath(data + u'/' + c));
            const QStringList files = QDir(m_data + u"/train/"_s + c).entryList(QDir::Files);
            for (const QString &f : files.mid(0, 10))
                QVERIFY(
                    QFile::copy(m_data + u"/train/"_s + c + u'/' + f, data + u'/' + c + u'/' + f));
            for (int i = 0; i < 4; ++i)
                QVERIFY(writeFile(data + u'/' + c + u"/broken%1.png"_s.arg(i), "not an image"));
        }
        const QString out = m_dir.filePath(u"broken-run"_s);
        TorchrunJob job(rendezvous(2),
                        {u"--data"_s, data, u"--val-split"_s, u"0"_s, u"--out"_s, out, u"--model"_s,
                         u"small_cnn"_s, u"--epochs"_s, u"2"_s, u"--batch-size"_s, u"1"_s,
                         u"--dist-timeout"_s, u"60"_s});
        QVERIFY(job.started());
        QVERIFY2(job.finish(300000) && job.exitCode() == 0, qPrintable(job.output()));
        // 28 files, 14 steps per rank and epoch, whatever each rank could load.
        QCOMPARE(stepLosses(out).size(), 2 * 14);
        QCOMPARE(metricsRows(out), 2);
        QVERIFY2(job.output().contains(u"unreadable image(s) were skipped"_s),
                 qPrintable(job.output()));
    }

    /// Ranks started by hand (as the app starts them, without torchrun) with different
    /// settings: refused by both, naming the difference.
    void mismatchedSettingsAreRefused()
    {
        const quint16 port = freePort();
        QList<QProcess *> ranks;
        for (int r = 0; r < 2; ++r) {
            auto *p = new QProcess(this);
            QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
            env.insert(u"RANK"_s, QString::number(r));
            env.insert(u"WORLD_SIZE"_s, u"2"_s);
            env.insert(u"MASTER_ADDR"_s, u"127.0.0.1"_s);
            env.insert(u"MASTER_PORT"_s, QString::number(port));
            env.insert(u"GLOO_SOCKET_IFNAME"_s, u"lo"_s);
            p->setProcessEnvironment(env);
            QStringList args = QStringList{u"train"_s}
                + resnetArgs(m_dir.filePath(u"mismatch"_s), 16, 1)
                + QStringList{u"--dist-timeout"_s, u"60"_s};
            if (r == 1)
                args << u"--momentum"_s << u"0.8"_s;
            p->start(cliPath(), args);
            ranks.append(p);
        }
        for (QProcess *p : ranks) {
            QVERIFY(p->waitForFinished(120000));
            QCOMPARE(p->exitCode() == 0, false);
        }
        const QString rank0 = QString::fromUtf8(ranks[0]->readAllStandardError());
        QVERIFY2(rank0.contains(u"rank 1's momentum is 0.8, rank 0's is 0.9"_s), qPrintable(rank0));
        QVERIFY(!QFile::exists(m_dir.filePath(u"mismatch/last.pth"_s)));
    }

    /// A rank that dies mid-epoch ends the other with a clear error at its next exchange (not
    /// a hang), and torchrun fails the job; a rank that hangs ends it after --dist-timeout.
    void lostRankEndsTheRun_data()
    {
        QTest::addColumn<int>("signal");
        QTest::newRow("killed") << int(SIGKILL);
        QTest::newRow("hung") << int(SIGSTOP);
    }
    void lostRankEndsTheRun()
    {
        QFETCH(int, signal);
        const QString out = m_dir.filePath(u"lost-%1"_s.arg(signal));
        TorchrunJob job(rendezvous(2),
                        resnetArgs(out, 4, 20) + QStringList{u"--dist-timeout"_s, u"8"_s});
        QVERIFY(job.started());
        QVERIFY2(waitFor([&] { return stepLosses(out).size() >= 3; }, 300000),
                 "the run took steps");
        const QMap<int, qint64> ranks = job.workersByRank();
        QVERIFY2(ranks.contains(1), "rank 1 runs");
        QElapsedTimer clock;
        clock.start();
        QCOMPARE(::kill(pid_t(ranks[1]), signal), 0);
        QVERIFY2(job.finish(120000), "torchrun ended");
        QVERIFY(job.exitCode() != 0);
        const QString output = job.output();
        QVERIFY2(output.contains(u"rank 0 lost the other processes during"_s), qPrintable(output));
        if (signal == SIGSTOP)
            QVERIFY2(output.contains(u"did not answer within 8 s"_s), qPrintable(output));
        QVERIFY2(stepLosses(out).size() < 20 * 40, "the run did not finish");
    }

    /// torchrun --max_restarts 1: after a rank dies, the job starts again, resumes from the
    /// last epoch's last.pth by itself, and finishes with every epoch in its metrics.
    void restartResumesFromLastCheckpoint()
    {
        const QString out = m_dir.filePath(u"restart"_s);
        TorchrunJob job(rendezvous(2) + QStringList{u"--max_restarts=1"_s},
                        resnetArgs(out, 4, 6) + QStringList{u"--dist-timeout"_s, u"30"_s});
        QVERIFY(job.started());
        QVERIFY2(waitFor([&] { return metricsRows(out) >= 1; }, 300000), "epoch 1 was saved");
        const QMap<int, qint64> ranks = job.workersByRank();
        QVERIFY2(ranks.contains(1), "rank 1 runs");
        QCOMPARE(::kill(pid_t(ranks[1]), SIGKILL), 0);
        QVERIFY2(job.finish(600000) && job.exitCode() == 0, qPrintable(job.output()));
        const QString output = job.output();
        QVERIFY2(output.contains(u"torchrun restarted the job (restart 1): resuming from "
                                 "last.pth"_s),
                 qPrintable(output));
        QCOMPARE(metricsRows(out), 6);
        QCOMPARE(stepLosses(out).size(), 6 * (320 / 2 / 4));
    }
};

QTEST_GUILESS_MAIN(TestDistributed)
#include "tst_distributed.moc"
