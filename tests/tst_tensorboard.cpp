// TensorBoard event files: a real training run's events decode with protobuf classes built from
// tensorboard's field numbers, their CRCs check (python3-crc32c) and their values equal
// metrics.csv and steps.csv (tests/tools/tensorboard_oracle.py); a Python run's event file is
// read back as a run history for the overlay; damaged files and failed writes are reported.
#include "testutil.h"

#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/tensorboardwriter.h"
#include "training/training.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

using namespace ifs;
using namespace Qt::StringLiterals;

class TstTensorBoard : public QObject
{
    Q_OBJECT

    QTemporaryDir m_dir;
    QString m_data;

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
        SampleDataOptions options;
        options.source = test::fashionMnistSource(m_dir.path());
        options.limitPerClass = 20;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
    }

    /// CRC-32C's check value and TFRecord's frame.
    void crcAndFrame()
    {
        QCOMPARE(crc32c("123456789", 9), 0xE3069283u);
        const QByteArray record = tfRecord("abc"_ba);
        QCOMPARE(record.size(), 3 + 16);
        QCOMPARE(record.mid(12, 3), "abc"_ba);
        const uint32_t crc = crc32c("abc", 3);
        quint32 masked = 0;
        memcpy(&masked, record.constData() + 15, 4);
        QCOMPARE(masked, ((crc >> 15) | (crc << 17)) + 0xa282ead8u);
    }

    /// A short run on Fashion-MNIST: the events equal its CSV files, and read back as the same
    /// history.
    void runEventsEqualMetrics()
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"small_cnn"_s;
        c.epochs = 2;
        c.batchSize = 32;
        c.lr = 0.05;
        c.seed = 3;
        c.workers = 2;
        c.device = u"cpu"_s;
        c.outDir = m_dir.filePath(u"run"_s);
        Trainer trainer(c);
        QStringList statuses;
        TrainCallbacks callbacks;
        callbacks.status = [&statuses](const QString &s) {
            statuses.append(s);
        };
        const TrainFinish finish = trainer.run(callbacks);
        QVERIFY2(finish.outcome == TrainOutcome::Completed, qPrintable(finish.message));
        QVERIFY(!finish.message.contains(u"TensorBoard"_s));
        const QStringList files = tensorBoardFiles(c.outDir);
        QCOMPARE(files.size(), 1);
        QVERIFY(QFileInfo(files[0]).fileName().startsWith(u"events.out.tfevents."_s));

        const test::ProcessResult oracle
            = test::runOracle(u"tensorboard_oracle.py"_s, {u"verify"_s, c.outDir});
        QVERIFY2(oracle.exitCode == 0, QByteArray(oracle.out + oracle.err).constData());
        const QJsonObject summary = QJsonDocument::fromJson(oracle.out).object();
        QVERIFY(summary.value(u"problems"_s).toArray().isEmpty());
        QVERIFY(summary.value(u"compared"_s).toInt() > 20);
        qInfo() << "oracle:" << oracle.out.trimmed();

        // Our reader gives the history metrics.csv and steps.csv give, in float32.
        const auto csv = readRunHistory(c.outDir);
        const auto events = readTensorBoardHistory(c.outDir);
        QVERIFY2(csv && events, qPrintable(csv.errorMessage() + events.errorMessage()));
        QCOMPARE(events->epochs.size(), csv->epochs.size());
        QCOMPARE(events->steps.size(), csv->steps.size());
        auto near = [](double a, double b) {
            return std::abs(a - b) <= 1e-6 * std::max(1.0, b);
        };
        for (qsizetype i = 0; i < csv->epochs.size(); ++i) {
            const EpochRecord &a = events->epochs[i], &b = csv->epochs[i];
            QCOMPARE(a.epoch, b.epoch);
            QCOMPARE(a.step, b.step);
            QVERIFY(near(a.trainLoss, b.trainLoss) && near(a.valLoss, b.valLoss));
            QVERIFY(near(a.trainAccuracy, b.trainAccuracy) && near(a.valAccuracy, b.valAccuracy));
            QVERIFY(std::abs(a.imagesPerSecond - b.imagesPerSecond)
                    <= 0.05 + 1e-6 * b.imagesPerSecond);
        }
        for (qsizetype i = 0; i < csv->steps.size(); ++i) {
            const StepRecord &a = events->steps[i], &b = csv->steps[i];
            QCOMPARE(a.step, b.step);
            QCOMPARE(a.epoch, b.epoch);
            QVERIFY(near(a.loss, b.loss) && near(a.lr, b.lr));
        }
    }

    /// A run stopped inside an epoch and resumed: the resumed run adds a file of its own, and
    /// the two together still equal the CSV files (which the resume rewrote whole).
    void resumedRunAddsAFile()
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.epochs = 2;
        c.batchSize = 32;
        c.seed = 5;
        c.workers = 2;
        c.device = u"cpu"_s;
        c.outDir = m_dir.filePath(u"resumed"_s);
        c.maxSteps = 3;
        QCOMPARE(Trainer(c).run().outcome, TrainOutcome::Stopped);
        QCOMPARE(tensorBoardFiles(c.outDir).size(), 1);
        TrainConfig resumed = c;
        resumed.maxSteps = 0;
        resumed.resumePath = c.outDir + u"/last.pth"_s;
        const TrainFinish finish = Trainer(resumed).run();
        QVERIFY2(finish.outcome == TrainOutcome::Completed, qPrintable(finish.message));
        QCOMPARE(tensorBoardFiles(c.outDir).size(), 2);
        const test::ProcessResult oracle
            = test::runOracle(u"tensorboard_oracle.py"_s, {u"verify"_s, c.outDir});
        QVERIFY2(oracle.exitCode == 0, QByteArray(oracle.out + oracle.err).constData());
        const auto history = readTensorBoardHistory(c.outDir);
        QVERIFY(history);
        QCOMPARE(history->epochs.size(), 2);
        QCOMPARE(history->steps.constFirst().step, 1);
        QCOMPARE(history->steps.size(), readRunHistory(c.outDir)->steps.size());
    }

    /// A Python run's folder (no metrics.csv): the overlay reads its event file.
    void pythonRunOverlay()
    {
        const QString folder = m_dir.filePath(u"python_run"_s);
        QVERIFY(QDir().mkpath(folder));
        const test::ProcessResult oracle
            = test::runOracle(u"tensorboard_oracle.py"_s,
                              {u"write"_s, folder + u"/events.out.tfevents.1700000000.host.1.0"_s});
        QVERIFY2(oracle.exitCode == 0, oracle.err.constData());
        const QJsonObject written = QJsonDocument::fromJson(oracle.out).object();
        const auto history = readRunHistory(folder);
        QVERIFY2(history, qPrintable(history.errorMessage()));
        const QJsonArray steps = written.value(u"steps"_s).toArray();
        const QJsonArray epochs = written.value(u"epochs"_s).toArray();
        QCOMPARE(history->steps.size(), steps.size());
        QCOMPARE(history->epochs.size(), epochs.size());
        for (qsizetype i = 0; i < steps.size(); ++i) {
            const QJsonArray s = steps[i].toArray();
            QCOMPARE(history->steps[i].step, s[0].toInteger());
            QCOMPARE(float(history->steps[i].loss), float(s[1].toDouble()));
            QCOMPARE(float(history->steps[i].lr), float(s[2].toDouble()));
        }
        for (qsizetype i = 0; i < epochs.size(); ++i) {
            const QJsonArray e = epochs[i].toArray();
            const EpochRecord &r = history->epochs[i];
            QCOMPARE(r.epoch, e[0].toInt());
            QCOMPARE(float(r.trainLoss), float(e[1].toDouble()));
            QCOMPARE(float(r.trainAccuracy), float(e[2].toDouble())); // fractions stay fractions
            QCOMPARE(float(r.valLoss), float(e[3].toDouble()));
            QCOMPARE(float(r.valAccuracy), float(e[4].toDouble())); // a new-style tensor scalar
        }
        // And the text is read as text.
        const auto values = readTensorBoardFile(tensorBoardFiles(folder).constFirst());
        QVERIFY(values);
        QVERIFY(std::any_of(values->cbegin(), values->cend(), [](const TensorBoardValue &v) {
            return v.isText && v.text == u"a Python run"_s && v.tag == u"notes/text_summary"_s;
        }));
    }

    /// A damaged record is an error naming the file; a last record cut short is not.
    void damagedAndGrowingFiles()
    {
        const QString folder = m_dir.filePath(u"damaged"_s);
        QVERIFY(QDir().mkpath(folder));
        TensorBoardWriter writer;
        QVERIFY(writer.open(folder, u".test"_s));
        QVERIFY(writer.path().endsWith(u".test"_s));
        for (int step = 1; step <= 3; ++step)
            QVERIFY(writer.addScalar(u"train/loss_step"_s, 1.0 / step, step, 100.0 + step));
        writer.close();
        QFile file(writer.path());
        QVERIFY(file.open(QIODevice::ReadOnly));
        const QByteArray bytes = file.readAll();
        file.close();
        auto values = readTensorBoardFile(writer.path());
        QVERIFY(values);
        QCOMPARE(values->size(), 3);
        QCOMPARE(values->at(2).step, 3);
        QCOMPARE(values->at(2).wallTime, 103.0);
        QCOMPARE(float(values->at(2).value), float(1.0 / 3));

        QVERIFY(test::writeFile(writer.path(), bytes.left(bytes.size() - 5)));
        values = readTensorBoardFile(writer.path());
        QVERIFY(values);
        QCOMPARE(values->size(), 2);

        QByteArray damaged = bytes;
        damaged[damaged.size() - 8] = char(damaged[damaged.size() - 8] ^ 0x40);
        QVERIFY(test::writeFile(writer.path(), damaged));
        values = readTensorBoardFile(writer.path());
        QVERIFY(!values);
        QVERIFY(values.errorMessage().contains(writer.path()));
        QVERIFY(values.errorMessage().contains(u"checksum"_s));
    }

    /// A write that fails (a full disk) leaves whole records and is reported; training goes on
    /// and its finish message names the failure.
    void failedWritesAreReported()
    {
        const QString folder = m_dir.filePath(u"full"_s);
        QVERIFY(QDir().mkpath(folder));
        TensorBoardWriter writer;
        QVERIFY(writer.open(folder));
        const qint64 start = QFileInfo(writer.path()).size();
        {
            test::FileSizeLimit limit(start + 100);
            if (!limit.isActive())
                QSKIP("cannot limit the file size here");
            Status ok = success();
            int written = 0;
            for (; written < 100 && ok; ++written)
                ok = writer.addScalar(u"train/loss_step"_s, 0.5, written + 1);
            QVERIFY(!ok);
            QVERIFY2(ok.errorMessage().contains(writer.path()), qPrintable(ok.errorMessage()));
            const auto values = readTensorBoardFile(writer.path());
            QVERIFY(values);
            QCOMPARE(values->size(), written - 1);
        }

        // The callbacks: a run folder where the file cannot be created.
        QStringList statuses;
        QString finished;
        QStringList notes;
        TrainCallbacks given;
        given.status = [&statuses](const QString &s) {
            statuses.append(s);
        };
        given.started = [&notes](const TrainStart &s) {
            notes = s.notes;
        };
        given.finished = [&finished](const TrainFinish &f) {
            finished = f.message;
        };
        const TrainCallbacks wrapped = withTensorBoardEvents(given);
        TrainStart begin;
        begin.history.folder = m_dir.filePath(u"no/such/folder"_s);
        wrapped.started(begin);
        wrapped.step(StepProgress{});
        TrainFinish finish;
        finish.message = u"Training completed."_s;
        wrapped.finished(finish);
        QCOMPARE(statuses.size(), 1);
        QVERIFY(statuses[0].startsWith(u"TensorBoard events not written: cannot write"_s));
        QVERIFY(notes.constLast().startsWith(u"TensorBoard events not written"_s));
        QVERIFY(finished.startsWith(u"Training completed. (TensorBoard events not written"_s));
    }
};

QTEST_GUILESS_MAIN(TstTensorBoard)
#include "tst_tensorboard.moc"
