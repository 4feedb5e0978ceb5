// A run started from pretrained weights (TrainConfig::pretrained, `train --pretrained`): the
// trainer finds torchvision's file in torch.hub's cache (a test cache with a file torchvision
// wrote under the canonical name, its hash accepted the test-only way), loads it into the model
// with the head re-initialised for the class count, proposes the weights' own pipelines, and
// records the choice in config.json. Real training steps: labelled slow.
#include "testutil.h"

#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/pretrained.h"
#include "training/training.h"

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QScopeGuard>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QTest>

using namespace ifs;
using namespace ifs::test;
using namespace Qt::StringLiterals;

namespace {

ckpt::Value readRoot(const QString &path)
{
    auto file = ckpt::readCheckpoint(path);
    return file ? file->root : ckpt::Value();
}

/// Serves one file over HTTP on 127.0.0.1, honouring `Range: bytes=N-`; it lives in the test's
/// thread, whose event loop the trainer's download spins. Records each request's Range.
class OneFileServer
{
public:
    OneFileServer(QString name, QByteArray bytes)
        : m_name(std::move(name))
        , m_bytes(std::move(bytes))
    {
        m_server.listen(QHostAddress::LocalHost, 0);
        QObject::connect(&m_server, &QTcpServer::newConnection, &m_server, [this] {
            while (QTcpSocket *socket = m_server.nextPendingConnection())
                QObject::connect(socket, &QTcpSocket::readyRead, socket,
                                 [this, socket] { serve(socket); });
        });
    }
    QByteArray baseUrl() const
    {
        return "http://127.0.0.1:" + QByteArray::number(m_server.serverPort()) + '/';
    }
    QStringList ranges;

private:
    void serve(QTcpSocket *socket)
    {
        QByteArray &request = m_requests[socket];
        request += socket->readAll();
        if (!request.contains("\r\n\r\n"))
            return;
        qint64 from = 0;
        QString range;
        for (const QByteArray &line : request.split('\n'))
            if (line.toLower().startsWith("range: bytes=")) {
                from = line.mid(13, line.indexOf('-') - 13).toLongLong();
                range = QString::fromLatin1(line.trimmed());
            }
        ranges.append(range);
        const bool found = request.startsWith(QByteArray("GET /" + m_name.toLatin1() + ' '));
        QByteArray head = !found ? QByteArray("HTTP/1.1 404 Not Found\r\n")
            : from > 0           ? "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes "
                + QByteArray::number(from) + '-' + QByteArray::number(m_bytes.size() - 1) + '/'
                + QByteArray::number(m_bytes.size()) + "\r\n"
                       : QByteArray("HTTP/1.1 200 OK\r\n");
        const QByteArray body = found ? m_bytes.mid(from) : QByteArray();
        socket->write(head + "Content-Length: " + QByteArray::number(body.size())
                      + "\r\nConnection: close\r\n\r\n" + body);
        socket->disconnectFromHost();
    }

    QString m_name;
    QByteArray m_bytes;
    QTcpServer m_server;
    QHash<QTcpSocket *, QByteArray> m_requests;
};

} // namespace

class TestPretrainedTraining : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data;
    QString m_cacheFile; // resnet18-f37072fd.pth, written by torchvision

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
        SampleDataOptions options;
        options.source = fashionMnistSource(m_dir.path(), 10);
        options.limitPerClass = 4;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;

        // torch.hub's cache under TORCH_HOME, as Python would have filled it.
        qputenv("TORCH_HOME", QFile::encodeName(m_dir.filePath(u"torch"_s)));
        const PretrainedWeights weights
            = findPretrainedWeights(u"resnet18"_s, u"DEFAULT"_s).value();
        m_cacheFile = PretrainedOptions{}.pathOf(weights);
        QCOMPARE(m_cacheFile, m_dir.filePath(u"torch/hub/checkpoints/resnet18-f37072fd.pth"_s));
        QVERIFY(QDir().mkpath(QFileInfo(m_cacheFile).absolutePath()));
        const ProcessResult r
            = runOracle(u"pretrained_oracle.py"_s, {u"save"_s, u"resnet18"_s, m_cacheFile, u"3"_s});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        qputenv("IFS_TEST_PRETRAINED_SHA256", r.out.trimmed());
        qputenv("IFS_TEST_PRETRAINED_URL", "http://127.0.0.1:9/"); // never the real network
    }

    /// One step with a learning rate too small to change a float32 weight: the backbone in
    /// last.pth is the file's, bit for bit; the head has the dataset's 10 classes.
    void trainStartsFromPretrainedWeights()
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"resnet18"_s;
        c.pretrained = u"DEFAULT"_s;
        c.epochs = 1;
        c.batchSize = 8;
        c.lr = 1e-30;
        c.momentum = 0.0;
        c.weightDecay = 0.0;
        c.maxSteps = 1;
        c.workers = 2;
        c.device = u"cpu"_s;
        c.outDir = m_dir.filePath(u"run"_s);
        Trainer trainer(c);
        TrainStart start;
        TrainCallbacks callbacks;
        callbacks.started = [&](const TrainStart &s) {
            start = s;
        };
        const TrainFinish f = trainer.run(callbacks);
        QVERIFY2(f.outcome != TrainOutcome::Failed, qPrintable(f.message));
        QVERIFY(!f.lastCheckpoint.isEmpty());

        // The weights' own preprocessing, as no pipeline was given.
        const WeightsPreprocessing p = findPretrainedWeights(u"resnet18"_s, u"V1"_s)->preprocessing;
        QCOMPARE(start.trainTransforms, pretrainedTrainTransforms(p));
        QCOMPARE(start.valTransforms, pretrainedValTransforms(p));
        const QString notes = start.notes.join(u'\n');
        QVERIFY2(notes.contains(u"ImageNet weights IMAGENET1K_V1 (torchvision's "
                                "resnet18-f37072fd.pth"_s),
                 qPrintable(notes));
        QVERIFY2(notes.contains(u"re-initialised"_s), qPrintable(notes));

        const ckpt::Value ours = readRoot(f.lastCheckpoint).value(u"model_state_dict");
        auto diff = ckpt::diffStateDicts(ours, readRoot(m_cacheFile));
        QVERIFY2(diff, qPrintable(diff.errorMessage()));
        QStringList identical;
        for (const ckpt::TensorDifference &t : diff->compared)
            if (t.identical)
                identical.append(t.key);
        for (const QString &key : {u"conv1.weight"_s, u"layer1.0.conv1.weight"_s,
                                   u"layer4.1.conv2.weight"_s, u"layer4.1.bn2.weight"_s})
            QVERIFY2(identical.contains(key), qPrintable(key + u": not the file's"_s));
        QStringList reshaped;
        for (const ckpt::TensorDifference &t : diff->shapeDiffers)
            reshaped.append(t.key + u' ' + QString::number(t.shapeA.value(0)));
        QCOMPARE(reshaped, (QStringList{u"fc.weight 10"_s, u"fc.bias 10"_s}));

        QFile config(c.outDir + u"/config.json"_s);
        QVERIFY(config.open(QIODevice::ReadOnly));
        QCOMPARE(QJsonDocument::fromJson(config.readAll())[u"pretrained"_s].toString(),
                 u"DEFAULT"_s);
    }

    /// Weights not in the cache are downloaded with progress on the status line; a stop during
    /// the download ends the run before it starts (nothing in the cache, no run folder) and the
    /// next run resumes the partial file with a Range request, then trains from it.
    void stopDuringDownloadThenResume()
    {
        QFile source(m_cacheFile);
        QVERIFY(source.open(QIODevice::ReadOnly));
        OneFileServer server(u"resnet18-f37072fd.pth"_s, source.readAll());
        const QByteArray torchHome = qgetenv("TORCH_HOME");
        const QByteArray url = qgetenv("IFS_TEST_PRETRAINED_URL");
        auto restore = qScopeGuard([&] {
            qputenv("TORCH_HOME", torchHome);
            qputenv("IFS_TEST_PRETRAINED_URL", url);
        });
        const QString emptyHome = m_dir.filePath(u"torch-empty"_s);
        qputenv("TORCH_HOME", QFile::encodeName(emptyHome));
        qputenv("IFS_TEST_PRETRAINED_URL", server.baseUrl());
        const QString cached = emptyHome + u"/hub/checkpoints/resnet18-f37072fd.pth"_s;

        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"resnet18"_s;
        c.pretrained = u"IMAGENET1K_V1"_s;
        c.epochs = 1;
        c.batchSize = 8;
        c.maxSteps = 1;
        c.device = u"cpu"_s;
        c.trainTransforms = u"transforms.Compose([transforms.Resize(32), transforms.ToTensor()])"_s;
        c.valTransforms = c.trainTransforms;
        c.outDir = m_dir.filePath(u"download-run/nested"_s);
        {
            Trainer trainer(c);
            QStringList statuses;
            TrainCallbacks callbacks;
            callbacks.status = [&](const QString &text) {
                statuses.append(text);
                if (text.startsWith(u"Downloading resnet18-f37072fd.pth: "_s))
                    trainer.stop();
            };
            const TrainFinish f = trainer.run(callbacks);
            QCOMPARE(f.outcome, TrainOutcome::Stopped);
            QCOMPARE(f.message, u"Stopped before the first batch"_s);
            QVERIFY2(statuses.filter(u"Downloading"_s).size() > 0,
                     qPrintable(statuses.join(u'\n')));
        }
        QVERIFY(!QFileInfo::exists(cached));
        QVERIFY(QFileInfo(cached + u".partial"_s).size() > 0);
        QVERIFY(!QFileInfo::exists(m_dir.filePath(u"download-run"_s)));
        QCOMPARE(server.ranges, QStringList{QString()});

        const qint64 kept = QFileInfo(cached + u".partial"_s).size();
        Trainer again(c);
        const TrainFinish f = again.run();
        QVERIFY2(f.outcome != TrainOutcome::Failed, qPrintable(f.message));
        QCOMPARE(server.ranges.filter(u"Range"_s, Qt::CaseInsensitive),
                 QStringList{u"Range: bytes=%1-"_s.arg(kept)});
        QCOMPARE(sha256OfFile(cached).value(), sha256OfFile(m_cacheFile).value());
    }

    /// What cannot be: weights for a model torchvision has none for, both a file and pretrained
    /// weights, a name that does not exist for the model.
    void impossibleRequestsAreRefused()
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.outDir = m_dir.filePath(u"refused"_s);
        c.arch = u"small_cnn"_s;
        c.pretrained = u"DEFAULT"_s;
        QVERIFY(c.validate().errorMessage().startsWith(u"small_cnn has no pretrained weights"_s));
        c.arch = u"resnet18"_s;
        c.pretrained = u"IMAGENET1K_V2"_s;
        QCOMPARE(c.validate().errorMessage(),
                 u"resnet18 has no IMAGENET1K_V2 weights in torchvision 0.14 (only "
                 "IMAGENET1K_V1)"_s);
        c.pretrained = u"IMAGENET1K_V1"_s;
        c.weightsPath = m_cacheFile;
        QCOMPARE(c.validate().errorMessage(),
                 u"start from a weights file or from pretrained weights, not both"_s);
        c.weightsPath.clear();
        QVERIFY(c.validate());
    }

    /// `ifstudio-cli train --pretrained` (no value: DEFAULT) runs from the cache too.
    void cliTrainPretrained()
    {
        const QString out = m_dir.filePath(u"cli-run"_s);
        const ProcessResult r
            = runCli({u"train"_s,
                      u"--data"_s,
                      m_data,
                      u"--model"_s,
                      u"resnet18"_s,
                      u"--pretrained"_s,
                      u"--train-transforms"_s,
                      u"transforms.Compose([transforms.Resize(32), transforms.ToTensor()])"_s,
                      u"--val-transforms"_s,
                      u"transforms.Compose([transforms.Resize(32), transforms.ToTensor()])"_s,
                      u"--max-steps"_s,
                      u"1"_s,
                      u"--batch-size"_s,
                      u"8"_s,
                      u"--threads"_s,
                      u"2"_s,
                      u"--device"_s,
                      u"cpu"_s,
                      u"--out"_s,
                      out});
        QVERIFY2(r.exitCode == 0, r.err.constData());
        QVERIFY2(r.err.contains("ImageNet weights IMAGENET1K_V1"), r.err.constData());
        QFile config(out + u"/config.json"_s);
        QVERIFY(config.open(QIODevice::ReadOnly));
        QCOMPARE(QJsonDocument::fromJson(config.readAll())[u"pretrained"_s].toString(),
                 u"DEFAULT"_s);
        const ProcessResult bad
            = runCli({u"train"_s, u"--data"_s, m_data, u"--model"_s, u"resnet18"_s,
                      u"--pretrained"_s, u"V3"_s, u"--out"_s, out});
        QVERIFY(bad.exitCode != 0);
        QVERIFY2(bad.err.contains("--pretrained: choose V1, V2 or DEFAULT, not “V3”"),
                 bad.err.constData());
    }
};

QTEST_GUILESS_MAIN(TestPretrainedTraining)
#include "tst_pretrainedtraining.moc"
