// Imbalanced data and early stopping against real PyTorch: the class-weighted loss is
// F.cross_entropy(weight=, label_smoothing=), the weighted sampler draws the indices that
// WeightedRandomSampler draws, a run on Fashion-MNIST with one class cut to 5% records its class
// weights and replays step by step in Python, and early stopping ends a stalled run after its
// patience (also across an exact resume), as a completed run.
#include "testutil.h"

#include "checkpoint/checkpointreader.h"
#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/models.h"
#include "training/training.h"
#include "transforms/batchloader.h"
#include "transforms/torchrng.h"
#include "transforms/transforms.h"
#include "transforms/transformspec.h"

#include <QDir>
#include <QFile>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <random>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

QJsonObject readJsonFile(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(file.readAll()).object()
                                          : QJsonObject();
}

QString writeJsonFile(const QString &path, const QJsonArray &array)
{
    QFile file(path);
    if (!file.open(QIODevice::WriteOnly))
        return {};
    file.write(QJsonDocument(array).toJson(QJsonDocument::Compact));
    return path;
}

QJsonArray toJson(const std::vector<double> &values)
{
    QJsonArray array;
    for (const double v : values)
        array.append(v);
    return array;
}

/// The samples of ImageFolder(root), in its order.
std::vector<LoaderSample> imageFolderSamples(const QString &root)
{
    std::vector<LoaderSample> samples;
    const QStringList classes = QDir(root).entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
    for (int c = 0; c < classes.size(); ++c) {
        const QDir folder(root + u'/' + classes[c]);
        for (const QString &name : folder.entryList(QDir::Files, QDir::Name))
            samples.push_back({folder.filePath(name), c});
    }
    return samples;
}

int countEpochRows(const QString &runDir)
{
    QFile file(runDir + u"/metrics.csv"_s);
    if (!file.open(QIODevice::ReadOnly))
        return -1;
    return int(file.readAll().trimmed().count('\n')); // rows after the header
}

} // namespace

class TstImbalance : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data; // Fashion-MNIST, 40 images per class, the first class cut to 2 in train/
    std::vector<qint64> m_counts; // training images per class

    TrainConfig baseConfig(const QString &run) const
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"small_cnn"_s;
        c.epochs = 6;
        c.batchSize = 32;
        c.lr = 0.05;
        c.seed = 7;
        c.workers = 2;
        c.device = u"cpu"_s;
        c.outDir = m_dir.filePath(run);
        return c;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
        SampleDataOptions options;
        options.source = test::fashionMnistSource(m_dir.path());
        options.limitPerClass = 40;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
        // One class cut to 5% of the others: 2 training images of 40.
        const QString train = m_data + u"/train"_s;
        const QString first
            = QDir(train).entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name).constFirst();
        QDir minority(train + u'/' + first);
        const QStringList files = minority.entryList(QDir::Files, QDir::Name);
        for (qsizetype i = 2; i < files.size(); ++i)
            QVERIFY(minority.remove(files[i]));
        m_counts.assign(10, 0);
        for (const LoaderSample &s : imageFolderSamples(train))
            ++m_counts[size_t(s.label)];
        QCOMPARE(m_counts[0], 2);
        QCOMPARE(m_counts[1], 40);
    }

    void namesAndConfigJson()
    {
        QCOMPARE(classWeightingFromName(u"inverse-frequency"_s), ClassWeighting::InverseFrequency);
        QCOMPARE(classWeightingName(ClassWeighting::InverseFrequency), u"balanced"_s);
        QCOMPARE(samplerFromName(u"weighted"_s), SamplerKind::Weighted);
        QCOMPARE(earlyStopFromName(u"val_loss"_s), EarlyStopMetric::ValLoss);
        QVERIFY(!earlyStopFromName(u"val_f1"_s));
        const std::vector<double> w = balancedClassWeights({10, 30, 0, 20});
        QCOMPARE(w, (std::vector<double>{60.0 / 40.0, 60.0 / 120.0, 0.0, 60.0 / 80.0}));

        TrainConfig c;
        c.classWeighting = ClassWeighting::InverseFrequency;
        c.classWeights = {0.25, 1.0 / 3.0};
        c.sampler = SamplerKind::Weighted;
        c.earlyStopping = EarlyStopMetric::ValAccuracy;
        c.patience = 3;
        c.minDelta = 0.005;
        const QJsonObject json = c.toJson();
        QCOMPARE(json.value(u"class_weighting"_s).toString(), u"balanced"_s);
        QCOMPARE(json.value(u"early_stopping"_s).toString(), u"val_acc"_s);
        auto back
            = TrainConfig::fromJson(QJsonDocument::fromJson(QJsonDocument(json).toJson()).object());
        QVERIFY2(back, qPrintable(back.errorMessage()));
        QCOMPARE(back->classWeighting, c.classWeighting);
        QCOMPARE(back->classWeights, c.classWeights);
        QCOMPARE(back->sampler, c.sampler);
        QCOMPARE(back->earlyStopping, c.earlyStopping);
        QCOMPARE(back->patience, 3);
        QCOMPARE(back->minDelta, 0.005);
        QJsonObject bad = json;
        bad[u"sampler"_s] = u"stratified"_s;
        QVERIFY(TrainConfig::fromJson(bad).errorMessage().contains(u"sampler"_s));

        c.dataRoot = m_data;
        c.outDir = m_dir.filePath(u"unused"_s);
        c.patience = 0;
        QVERIFY(c.validate().errorMessage().contains(u"patience"_s));
        c.patience = 1;
        c.minDelta = -1;
        QVERIFY(c.validate().errorMessage().contains(u"min delta"_s));
    }

    /// trainingLoss() (what a training step computes) against F.cross_entropy with class
    /// weights and label smoothing on the same logits.
    void weightedLossIsTorchs()
    {
        std::mt19937 rng(5);
        std::uniform_real_distribution<float> logit(-4.0f, 4.0f);
        QJsonArray cases;
        std::vector<double> ours;
        const int classes = 10;
        for (const double smoothing : {0.0, 0.1, 0.3}) {
            for (const bool weighted : {false, true}) {
                const int rows = 48;
                std::vector<float> logits(size_t(rows * classes));
                for (float &v : logits)
                    v = logit(rng);
                std::vector<int64_t> labels(static_cast<size_t>(rows));
                std::vector<qint64> counts(classes, 0);
                for (int i = 0; i < rows; ++i) { // skewed: class 0 often, the others rarely
                    labels[size_t(i)] = i % 3 == 0 ? int64_t(rng() % classes) : 0;
                    ++counts[size_t(labels[size_t(i)])];
                }
                const std::vector<double> weights
                    = weighted ? balancedClassWeights(counts) : std::vector<double>();
                ours.push_back(trainingLoss(logits, labels, classes, weights, smoothing));
                QJsonArray l, y;
                for (const float v : logits)
                    l.append(double(v));
                for (const int64_t v : labels)
                    y.append(qint64(v));
                cases.append(QJsonObject{{u"classes"_s, classes},
                                         {u"logits"_s, l},
                                         {u"labels"_s, y},
                                         {u"weights"_s, toJson(weights)},
                                         {u"smoothing"_s, smoothing}});
            }
        }
        const QString input = writeJsonFile(m_dir.filePath(u"loss-cases.json"_s), cases);
        const test::ProcessResult run
            = test::runOracle(u"imbalance_oracle.py"_s, {u"loss"_s, input});
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray theirs = QJsonDocument::fromJson(run.out).array();
        QCOMPARE(theirs.size(), qsizetype(ours.size()));
        for (qsizetype i = 0; i < theirs.size(); ++i) {
            const double torch = theirs[i].toObject().value(u"loss"_s).toDouble();
            QVERIFY2(std::abs(ours[size_t(i)] - torch) <= 1e-6 * std::abs(torch),
                     qPrintable(u"case %1: ours %2, torch %3"_s.arg(i)
                                    .arg(ours[size_t(i)], 0, 'g', 9)
                                    .arg(torch, 0, 'g', 9)));
        }
        // The weights change the loss (the oracle's weighted mean is not the plain one).
        QVERIFY(std::abs(ours[0] - ours[1]) > 1e-3);
    }

    /// TorchGenerator's multinomial draws with replacement against WeightedRandomSampler's with
    /// torch.Generator().manual_seed(seed): uneven weights, zeros, a large draw, a 64-bit seed.
    void multinomialIsTorchs()
    {
        std::mt19937 rng(11);
        std::uniform_real_distribution<double> weight(0.0, 3.0);
        struct Case
        {
            std::vector<double> weights;
            int64_t count;
            uint64_t seed;
        };
        std::vector<Case> cases;
        cases.push_back({{1.0, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25}, 7, 0});
        cases.push_back({{0.0, 2.0, 0.0, 1e-3, 5.0}, 50, 42});
        std::vector<double> many(1000);
        for (double &w : many)
            w = weight(rng) * (rng() % 7 == 0 ? 0.0 : 1.0);
        cases.push_back({many, 5000, epochOrderSeed(7, 3)});
        cases.push_back({std::vector<double>(300, 1.0 / 40.0), 300, 18446744073709551557ULL});
        QJsonArray input;
        for (const Case &c : cases)
            input.append(QJsonObject{{u"weights"_s, toJson(c.weights)},
                                     {u"count"_s, qint64(c.count)},
                                     {u"seed"_s, QString::number(c.seed)}});
        const QString path = writeJsonFile(m_dir.filePath(u"multinomial.json"_s), input);
        const test::ProcessResult run
            = test::runOracle(u"imbalance_oracle.py"_s, {u"multinomial"_s, path});
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray theirs = QJsonDocument::fromJson(run.out).array();
        QCOMPARE(theirs.size(), qsizetype(cases.size()));
        for (size_t i = 0; i < cases.size(); ++i) {
            TorchGenerator generator(cases[i].seed);
            const std::vector<int64_t> ours
                = generator.multinomialWithReplacement(cases[i].weights, cases[i].count);
            const QJsonArray expected = theirs[qsizetype(i)].toArray();
            QCOMPARE(qsizetype(ours.size()), expected.size());
            for (size_t k = 0; k < ours.size(); ++k)
                QVERIFY2(
                    ours[k] == expected[qsizetype(k)].toInteger(),
                    qPrintable(
                        u"case %1, draw %2: ours %3, torch %4"_s.arg(i).arg(k).arg(ours[k]).arg(
                            expected[qsizetype(k)].toInteger())));
        }
    }

    /// The loader's weighted order, epoch by epoch, is the weighted sampler's of a Python script
    /// (1 / n_class per image, the epoch's order seed); a resume inside an epoch keeps its place.
    void weightedSamplerOrderIsPythons()
    {
        const QString train = m_data + u"/train"_s;
        const std::vector<LoaderSample> samples = imageFolderSamples(train);
        BatchLoaderOptions options;
        options.batchSize = 50;
        options.workers = 2;
        options.seed = 7;
        for (const LoaderSample &s : samples)
            options.sampleWeights.push_back(1.0 / double(m_counts[size_t(s.label)]));
        auto spec = parseTransforms(u"transforms.ToTensor()"_s);
        QVERIFY2(spec, qPrintable(spec.errorMessage()));
        auto pipeline = CompiledPipeline::compile(spec.value());
        QVERIFY2(pipeline, qPrintable(pipeline.errorMessage()));
        BatchLoader loader(samples, pipeline.value(), options);
        auto epochOrder = [&](int epoch, int firstBatch) {
            QList<int> order;
            loader.startEpoch(epoch, firstBatch);
            while (std::optional<Batch> batch = loader.next()) {
                for (const int index : batch->sampleIndices)
                    order.append(index);
                loader.recycle(std::move(*batch));
            }
            return order;
        };
        const test::ProcessResult run = test::runOracle(
            u"imbalance_oracle.py"_s, {u"sampler"_s, train, QString::number(options.seed), u"3"_s});
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject theirs = QJsonDocument::fromJson(run.out).object();
        const QJsonArray weights = theirs.value(u"weights"_s).toArray();
        QCOMPARE(weights.size(), qsizetype(samples.size()));
        for (qsizetype i = 0; i < weights.size(); ++i)
            QCOMPARE(options.sampleWeights[size_t(i)], weights[i].toDouble());
        const QJsonArray epochs = theirs.value(u"epochs"_s).toArray();
        for (int e = 0; e < 3; ++e) {
            const QList<int> ours = epochOrder(e, 0);
            QList<int> expected;
            for (const QJsonValue v : epochs[e].toArray())
                expected.append(v.toInt());
            QCOMPARE(ours, expected);
            // With replacement and 1 / n_class, the minority class comes up about as often as
            // any other, far more than its 2 images.
            const qsizetype minority = std::count_if(
                ours.begin(), ours.end(), [&](int i) { return samples[size_t(i)].label == 0; });
            QVERIFY2(minority > 10, qPrintable(QString::number(minority)));
        }
        const QList<int> resumed = epochOrder(1, 2);
        QCOMPARE(resumed, epochOrder(1, 0).mid(2 * options.batchSize, resumed.size()));
    }

    /// Full-batch resnet18 runs on the imbalanced set (one step per epoch) replayed in Python
    /// step by step by the optimizer oracle from config.json: with class weights (and label
    /// smoothing), and with the weighted sampler (the batch is the epoch's drawn sample, repeats
    /// included).
    void imbalancedRunReplaysWithTheOracle_data()
    {
        QTest::addColumn<bool>("classWeights");
        QTest::addColumn<bool>("weightedSampler");
        QTest::newRow("balanced class weights, label smoothing") << true << false;
        QTest::newRow("weighted sampler") << false << true;
    }
    void imbalancedRunReplaysWithTheOracle()
    {
        QFETCH(bool, classWeights);
        QFETCH(bool, weightedSampler);
        const QString initial = m_dir.filePath(u"r18-initial.pth"_s);
        if (!QFileInfo::exists(initial))
            QVERIFY(exportInitialWeights(u"resnet18"_s, 10, 3, initial));
        TrainConfig c = baseConfig(classWeights ? u"r18-weights"_s : u"r18-sampler"_s);
        c.arch = u"resnet18"_s;
        c.weightsPath = initial;
        c.trainTransforms
            = u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])"_s;
        qint64 trainImages = 0;
        for (const qint64 n : m_counts)
            trainImages += n;
        c.batchSize = int(trainImages); // one step per epoch
        c.epochs = 2;
        c.saveEveryEpochs = 1;
        c.memoryFormat = MemoryFormat::Contiguous; // the tolerances' layout (see tst_training)
        c.amp = AmpMode::Off;
        if (classWeights) {
            c.classWeighting = ClassWeighting::InverseFrequency;
            c.labelSmoothing = 0.1;
        }
        if (weightedSampler)
            c.sampler = SamplerKind::Weighted;
        int threads = 0;
        Trainer trainer(c);
        TrainCallbacks callbacks;
        callbacks.started = [&](const TrainStart &s) {
            threads = s.threads;
        };
        const TrainFinish f = trainer.run(callbacks);
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));

        const QJsonObject config = readJsonFile(c.outDir + u"/config.json"_s);
        const QJsonArray recorded = config.value(u"class_weights"_s).toArray();
        if (classWeights) {
            QCOMPARE(config.value(u"class_weighting"_s).toString(), u"balanced"_s);
            QCOMPARE(recorded.size(), 10);
            for (int k = 0; k < 10; ++k) // N / (C × n_c), the minority's 20 times the others'
                QCOMPARE(recorded[k].toDouble(),
                         double(trainImages) / (10.0 * double(m_counts[size_t(k)])));
        } else {
            QVERIFY(recorded.isEmpty());
            QCOMPARE(config.value(u"sampler"_s).toString(), u"weighted"_s);
        }

        const test::ProcessResult run = test::runOracle(
            u"training_oracle.py"_s,
            {u"optimizer"_s, c.outDir, initial, m_data + u"/train"_s, QString::number(threads)},
            300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray steps
            = QJsonDocument::fromJson(run.out).object().value(u"steps"_s).toArray();
        QCOMPARE(steps.size(), c.epochs);
        for (const QJsonValue &value : steps) {
            const QJsonObject s = value.toObject();
            const QByteArray detail = QJsonDocument(s).toJson(QJsonDocument::Compact);
            const double ours = s.value(u"our_loss"_s).toDouble();
            const double torch = s.value(u"loss"_s).toDouble();
            QVERIFY2(std::abs(ours - torch) <= 1e-5 * std::abs(torch), detail.constData());
            QVERIFY(s.value(u"delta_norm"_s).toDouble() > 0.0);
            QVERIFY2(s.value(u"delta_rel_diff"_s).toDouble() < 2e-3, detail.constData());
            QVERIFY2(s.value(u"mismatch_share"_s).toDouble() < 1e-4, detail.constData());
        }
    }

    /// A run whose validation metric stalls stops after `patience` epochs past its first, as a
    /// completed run that says why; best.pth is kept. Stalled for real: the head alone trains
    /// (the backbone frozen, its BatchNorm in eval mode) at a rate too small to change a float32
    /// weight, so every epoch validates the same model; or a min delta no change can beat.
    void earlyStoppingStopsAfterPatience_data()
    {
        QTest::addColumn<QString>("metric");
        QTest::addColumn<double>("minDelta");
        QTest::addColumn<bool>("stalled");
        QTest::newRow("val_acc, stalled model") << u"val_acc"_s << 0.0 << true;
        QTest::newRow("val_loss, stalled model") << u"val_loss"_s << 0.0 << true;
        QTest::newRow("val_loss, min delta 10") << u"val_loss"_s << 10.0 << false;
    }
    void earlyStoppingStopsAfterPatience()
    {
        QFETCH(QString, metric);
        QFETCH(double, minDelta);
        QFETCH(bool, stalled);
        TrainConfig c = baseConfig(u"early-%1-%2"_s.arg(metric).arg(minDelta));
        c.earlyStopping = *earlyStopFromName(metric);
        c.patience = 2;
        c.minDelta = minDelta;
        if (stalled) {
            c.finetune = FinetuneMode::Head;
            c.lr = 1e-12;
        }
        QList<EpochRecord> epochs;
        TrainCallbacks callbacks;
        callbacks.epoch = [&](const EpochReport &r) {
            epochs.append(r.record);
        };
        Trainer trainer(c);
        const TrainFinish f = trainer.run(callbacks);
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QVERIFY(f.earlyStopped);
        QCOMPARE(f.epochsDone, 3);
        QCOMPARE(epochs.size(), 3);
        if (stalled) { // the same model validated three times
            QCOMPARE(epochs[2].valLoss, epochs[0].valLoss);
            QCOMPARE(epochs[2].valAccuracy, epochs[0].valAccuracy);
        }
        QCOMPARE(countEpochRows(c.outDir), 3);
        QVERIFY2(f.message.contains(u"Early stopping"_s) && f.message.contains(u"at epoch 1"_s)
                     && f.message.contains(u"for 2 epoch(s)"_s),
                 qPrintable(f.message));
        QVERIFY(QFileInfo::exists(c.outDir + u"/best.pth"_s));
        const QJsonObject config = readJsonFile(c.outDir + u"/config.json"_s);
        QCOMPARE(config.value(u"early_stopping"_s).toString(), metric);
        QCOMPARE(config.value(u"patience"_s).toInt(), 2);
    }

    /// The count of epochs without improvement survives an exact resume: a run stopped after
    /// epoch 2 (one epoch without improvement) and resumed stops after epoch 3, as the run
    /// would have without the break. (A count started afresh would run to epoch 5.)
    void earlyStoppingResumeKeepsTheCount()
    {
        TrainConfig c = baseConfig(u"early-resume"_s);
        c.earlyStopping = EarlyStopMetric::ValLoss;
        c.patience = 2;
        c.minDelta = 10.0;
        c.maxSteps = 2 * ((400 - 38) / c.batchSize); // two epochs (drop_last)
        Trainer first(c);
        const TrainFinish stopped = first.run();
        QVERIFY2(stopped.outcome == TrainOutcome::Stopped, qPrintable(stopped.message));
        QCOMPARE(stopped.epochsDone, 2);
        const auto file = ckpt::readCheckpoint(c.outDir + u"/last.pth"_s);
        QVERIFY(file);
        const ckpt::Value early = file->root.value(u"metrics").value(u"early_stopping");
        QCOMPARE(early.value(u"bad_epochs").toInt(), 1);
        QCOMPARE(early.value(u"best_epoch").toInt(), 1);

        TrainConfig resume = c;
        resume.maxSteps = 0;
        resume.resumePath = c.outDir + u"/last.pth"_s;
        Trainer second(resume);
        const TrainFinish f = second.run();
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QVERIFY(f.earlyStopped);
        QCOMPARE(f.epochsDone, 3);
    }

    /// The CLI's flags reach the run and config.json; a bad value is a usage error naming the
    /// choices.
    void cliFlags()
    {
        const QString out = m_dir.filePath(u"cli-run"_s);
        const test::ProcessResult run = test::runCli({u"train"_s,
                                                      u"--data"_s,
                                                      m_data,
                                                      u"--epochs"_s,
                                                      u"3"_s,
                                                      u"--batch-size"_s,
                                                      u"64"_s,
                                                      u"--workers"_s,
                                                      u"2"_s,
                                                      u"--threads"_s,
                                                      u"2"_s,
                                                      u"--device"_s,
                                                      u"cpu"_s,
                                                      u"--class-weights"_s,
                                                      u"balanced"_s,
                                                      u"--sampler"_s,
                                                      u"weighted"_s,
                                                      u"--early-stopping"_s,
                                                      u"val_loss"_s,
                                                      u"--patience"_s,
                                                      u"1"_s,
                                                      u"--min-delta"_s,
                                                      u"10"_s,
                                                      u"--out"_s,
                                                      out},
                                                     600000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        QVERIFY2(run.err.contains("Early stopping"), run.err.constData());
        QVERIFY2(run.err.contains("Class-weighted loss"), run.err.constData());
        const QJsonObject config = readJsonFile(out + u"/config.json"_s);
        QCOMPARE(config.value(u"class_weighting"_s).toString(), u"balanced"_s);
        QCOMPARE(config.value(u"class_weights"_s).toArray().size(), 10);
        QCOMPARE(config.value(u"sampler"_s).toString(), u"weighted"_s);
        QCOMPARE(config.value(u"early_stopping"_s).toString(), u"val_loss"_s);
        QCOMPARE(config.value(u"min_delta"_s).toDouble(), 10.0);
        QCOMPARE(countEpochRows(out), 2);

        const test::ProcessResult bad = test::runCli(
            {u"train"_s, u"--data"_s, m_data, u"--sampler"_s, u"stratified"_s, u"--out"_s, out});
        QVERIFY(bad.exitCode != 0);
        QVERIFY2(bad.err.contains("--sampler: choose shuffle or weighted"), bad.err.constData());
    }
};

QTEST_GUILESS_MAIN(TstImbalance)
#include "tst_imbalance.moc"
