// Training against real PyTorch: the models are torchvision's (keys, shapes, initialisation,
// forward pass), the loop learns (loss falls), reports progress and exactly one terminal
// signal, stops within one batch, pauses, resumes exactly, and its last.pth loads in Python into
// torchvision's resnet18 and torch.optim.SGD and gives the same predictions.
#include "testutil.h"

#include "base/cpufeatures.h"
#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "checkpoint/checkpointwriter.h"
#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/evaluation.h"
#include "training/models.h"
#include "training/training.h"
#include "training/trainingdata.h"

#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <thread>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

/// Everything the callbacks reported, in order.
struct Recorder
{
    std::vector<QString> events; // "started", "step", "epoch", "finished"
    std::vector<StepProgress> steps;
    std::vector<EpochReport> epochs;
    TrainStart start;
    int finished = 0;
    TrainFinish finish;

    TrainCallbacks callbacks()
    {
        TrainCallbacks c;
        c.started = [this](const TrainStart &s) {
            events.push_back(u"started"_s);
            start = s;
        };
        c.step = [this](const StepProgress &p) {
            events.push_back(u"step"_s);
            steps.push_back(p);
        };
        c.epoch = [this](const EpochReport &r) {
            events.push_back(u"epoch"_s);
            epochs.push_back(r);
        };
        c.finished = [this](const TrainFinish &f) {
            events.push_back(u"finished"_s);
            ++finished;
            finish = f;
        };
        return c;
    }
};

/// The loss column of a run's steps.csv, by step.
QMap<qint64, QString> stepLosses(const QString &runDir)
{
    QMap<qint64, QString> losses;
    QFile file(runDir + u"/steps.csv"_s);
    if (!file.open(QIODevice::ReadOnly | QIODevice::Text))
        return losses;
    file.readLine();
    while (!file.atEnd()) {
        const QStringList cells = QString::fromUtf8(file.readLine()).trimmed().split(u',');
        if (cells.size() == 4)
            losses.insert(cells[0].toLongLong(), cells[2]);
    }
    return losses;
}

ckpt::Value modelWeights(const QString &path)
{
    auto file = ckpt::readCheckpoint(path);
    if (!file)
        return {};
    return file->root.value(u"model_state_dict");
}

ckpt::Value checkpointRoot(const QString &path)
{
    auto file = ckpt::readCheckpoint(path);
    return file ? file->root : ckpt::Value();
}

/// The keys of `b` (a state dict) whose tensors differ from `a`'s, and those equal to them, bit
/// for bit.
std::pair<QStringList, QStringList> changedAndKept(const ckpt::Value &a, const ckpt::Value &b)
{
    QStringList changed, kept;
    auto diff = ckpt::diffStateDicts(a, b);
    if (!diff)
        return {{u"(no diff: "_s + diff.errorMessage() + u")"_s}, {}};
    for (const ckpt::TensorDifference &t : diff->compared)
        (t.identical ? kept : changed).append(t.key);
    return {changed, kept};
}

QJsonObject readJsonFile(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? QJsonDocument::fromJson(file.readAll()).object()
                                          : QJsonObject();
}

} // namespace

class TstTraining : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data; // a small real Fashion-MNIST: 40 images per class in train/ and val/

    TrainConfig baseConfig(const QString &run) const
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"small_cnn"_s;
        c.epochs = 2;
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
        QCOMPARE(exported->trainImages, 400);
    }

    void configJsonRoundTrip()
    {
        TrainConfig c = baseConfig(u"x"_s);
        c.optimizer = OptimizerKind::AdamW;
        c.schedule = ScheduleKind::OneCycle;
        c.seed = 18446744073709551557ull; // beyond a double's integers
        c.beta2 = 0.98;
        c.amp = AmpMode::BFloat16;
        auto back = TrainConfig::fromJson(c.toJson());
        QVERIFY(back);
        QCOMPARE(back->toJson(), c.toJson());
        QCOMPARE(back->seed, c.seed);
        QJsonObject bad = c.toJson();
        bad[u"optimizer"_s] = u"lbfgs"_s;
        QVERIFY(!TrainConfig::fromJson(bad));
        QVERIFY(TrainConfig::fromJson(bad).errorMessage().contains(u"optimizer"_s));
    }

    void exactResumeConfigKeepsTheRunsSettings()
    {
        TrainConfig saved = baseConfig(u"saved"_s);
        saved.optimizer = OptimizerKind::Adam;
        saved.lr = 3e-4;
        saved.epochs = 6;
        saved.memoryFormat = MemoryFormat::ChannelsLast;
        saved.device = u"cuda:0"_s;
        TrainConfig current = baseConfig(u"current"_s);
        current.epochs = 4;
        current.memoryFormat = MemoryFormat::Contiguous;
        current.threads = 1;
        current.resumePath = u"/runs/a/last.pth"_s;
        const TrainConfig merged = exactResumeConfig(saved, current);
        // The trajectory's settings are the run's own...
        QCOMPARE(merged.optimizer, OptimizerKind::Adam);
        QCOMPARE(merged.lr, 3e-4);
        QCOMPARE(merged.epochs, 6);
        // ...where and how to compute, and where to write, are this run's.
        QCOMPARE(merged.device, u"cpu"_s);
        QCOMPARE(merged.memoryFormat, MemoryFormat::Contiguous);
        QCOMPARE(merged.threads, 1);
        QCOMPARE(merged.outDir, current.outDir);
        QCOMPARE(merged.resumePath, current.resumePath);
        // Without a count of its own, the resume takes the run's: float sums round by it.
        saved.threads = 3;
        current.threads = 0;
        QCOMPARE(exactResumeConfig(saved, current).threads, 3);
    }

    void validationMessages_data()
    {
        QTest::addColumn<QString>("field");
        QTest::addColumn<QString>("expected");
        QTest::newRow("no data") << u"data"_s << u"no dataset"_s;
        QTest::newRow("batch") << u"batch"_s << u"batch size must be at least 1"_s;
        QTest::newRow("model") << u"model"_s << u"unknown model “vgg11”"_s;
        QTest::newRow("lr") << u"lr"_s << u"learning rate must be a positive number"_s;
        QTest::newRow("nesterov") << u"nesterov"_s << u"Nesterov momentum needs SGD"_s;
        QTest::newRow("out") << u"out"_s << u"no run folder"_s;
    }
    void validationMessages()
    {
        QFETCH(QString, field);
        QFETCH(QString, expected);
        TrainConfig c = baseConfig(u"v"_s);
        if (field == u"data")
            c.dataRoot.clear();
        if (field == u"batch")
            c.batchSize = 0;
        if (field == u"model")
            c.arch = u"vgg11"_s;
        if (field == u"lr")
            c.lr = -1;
        if (field == u"nesterov") {
            c.nesterov = true;
            c.optimizer = OptimizerKind::Adam;
        }
        if (field == u"out")
            c.outDir.clear();
        const Status ok = c.validate();
        QVERIFY(!ok);
        QVERIFY2(ok.errorMessage().contains(expected), qPrintable(ok.errorMessage()));
        // A run with it fails at once with that message, and says so exactly once.
        Recorder r;
        Trainer trainer(c);
        const TrainFinish f = trainer.run(r.callbacks());
        QCOMPARE(f.outcome, TrainOutcome::Failed);
        QCOMPARE(r.finished, 1);
        QCOMPARE(r.events, std::vector<QString>{u"finished"_s});
    }

    void devices()
    {
        auto cpu = resolveDevice(u"cpu"_s);
        QVERIFY(cpu);
        QCOMPARE(cpu->first, u"cpu"_s);
        auto automatic = resolveDevice(u"auto"_s);
        QVERIFY(automatic);
        QVERIFY(!automatic->second.isEmpty());
        QVERIFY(!resolveDevice(u"gpu"_s));
        if (cudaDevices().isEmpty()) {
            QCOMPARE(automatic->first, u"cpu"_s);
            QVERIFY(!resolveDevice(u"cuda:0"_s));
            QVERIFY(resolveDevice(u"cuda:0"_s).errorMessage().contains(u"CPU"_s));
        } else {
            QCOMPARE(automatic->first, u"cuda:0"_s);
            QVERIFY(!resolveDevice(u"cuda:%1"_s.arg(cudaDevices().size())));
        }
    }

    /// Each architecture is torchvision's: strict load, state_dict order, initialisation
    /// statistics, and the same forward pass on real images.
    void modelsAreTorchvisions_data()
    {
        QTest::addColumn<QString>("arch");
        for (const ModelArch &arch : modelArchitectures())
            QTest::newRow(qPrintable(arch.name)) << arch.name;
    }
    void modelsAreTorchvisions()
    {
        QFETCH(QString, arch);
        const int classes = 7;
        const QString weights = m_dir.filePath(arch + u"-init.pth"_s);
        QVERIFY(exportInitialWeights(arch, classes, 0, weights));
        // The parameter count (the buffers are BatchNorm's running stats and counters) with 10
        // classes, as the architecture table says.
        auto ten = modelTarget(arch, 10);
        QVERIFY(ten);
        qint64 parameters10 = 0;
        for (const ckpt::KeySpec &k : ten.value()) {
            if (k.key.contains(u"running_"_s) || k.key.endsWith(u"num_batches_tracked"_s))
                continue;
            qint64 n = 1;
            for (qint64 s : k.shape)
                n *= s;
            parameters10 += n;
        }
        QCOMPARE(parameters10, findModelArch(arch)->parameters10);

        // Our forward pass on three real images.
        const QString transform
            = u"transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(), "
              "transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])"_s;
        ClassifierOptions options;
        options.device = u"cpu"_s;
        options.arch = arch;
        options.valTransforms = transform;
        auto classifier = Classifier::load(weights, options);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));
        QCOMPARE(classifier->classes().size(), classes);
        QStringList images;
        QDirIterator it(m_data + u"/val"_s, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext() && images.size() < 3)
            images.append(it.next());
        auto predictions = classifier->predict(images, classes);
        QVERIFY(predictions);
        QJsonObject byPath;
        for (const ImagePrediction &p : predictions.value()) {
            QVERIFY2(p.error.isEmpty(), qPrintable(p.error));
            QJsonArray probabilities;
            std::vector<double> values(size_t(classes), -1.0);
            for (const auto &[index, probability] : p.top)
                values[size_t(index)] = probability;
            for (double v : values)
                probabilities.append(v);
            byPath.insert(p.path, probabilities);
        }
        const QString ours = m_dir.filePath(arch + u"-ours.json"_s);
        QVERIFY(test::writeFile(
            ours,
            QJsonDocument(QJsonObject{{u"transform"_s, transform}, {u"predictions"_s, byPath}})
                .toJson()));
        QStringList args = {u"arch"_s, arch, QString::number(classes), weights, ours};
        if (arch == u"small_cnn") {
            const QString source = m_dir.filePath(u"smallcnn.py"_s);
            QVERIFY(test::writeFile(source, smallCnnPythonSource().toUtf8()));
            args.append(source);
        }
        const test::ProcessResult run = test::runOracle(u"training_oracle.py"_s, args, 300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        QVERIFY2(out.value(u"strict"_s).isNull(), qPrintable(out.value(u"strict"_s).toString()));
        QVERIFY(out.value(u"order"_s).toBool());
        QCOMPARE(out.value(u"how"_s).toString(), u"weights_only=True"_s);
        QVERIFY2(out.value(u"forward_max_prob_diff"_s).toDouble() < 1e-4,
                 qPrintable(QString::number(out.value(u"forward_max_prob_diff"_s).toDouble())));
        // Initialisation: the same distribution as torchvision's (different draws): means and
        // standard deviations agree for every tensor large enough to estimate them.
        const QJsonObject init = out.value(u"init"_s).toObject();
        QVERIFY(!init.isEmpty());
        for (auto i = init.begin(); i != init.end(); ++i) {
            const QJsonObject t = i.value().toObject();
            const double n = t.value(u"numel"_s).toDouble();
            const QJsonArray ourStats = t.value(u"ours"_s).toArray();
            const QJsonArray theirStats = t.value(u"theirs"_s).toArray();
            const double ourStd = ourStats[1].toDouble(), theirStd = theirStats[1].toDouble();
            if (theirStd == 0.0) { // constants: BatchNorm weights, biases, running stats
                QCOMPARE(ourStats[0].toDouble(), theirStats[0].toDouble());
                QCOMPARE(ourStd, 0.0);
            } else if (n >= 2000) {
                QVERIFY2(
                    std::abs(ourStd / theirStd - 1.0) < 0.1,
                    qPrintable(u"%1: std %2 vs torchvision's %3"_s.arg(i.key()).arg(ourStd).arg(
                        theirStd)));
                QVERIFY2(std::abs(ourStats[0].toDouble() - theirStats[0].toDouble())
                             < 0.1 * theirStd,
                         qPrintable(u"%1: mean"_s.arg(i.key())));
            }
        }
    }

    /// The other way: torchvision's state dict (every tensor random, see the oracle's perturb())
    /// has our keys in our order with our shapes, loads strictly without repair, and our forward
    /// pass with it gives torchvision's probabilities.
    void torchvisionWeightsAreOurs_data() { modelsAreTorchvisions_data(); }
    void torchvisionWeightsAreOurs()
    {
        QFETCH(QString, arch);
        const int classes = 7;
        const QString transform
            = u"transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(), "
              "transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])"_s;
        QStringList images;
        QDirIterator it(m_data + u"/val"_s, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext() && images.size() < 3)
            images.append(it.next());
        const QString spec = m_dir.filePath(arch + u"-theirs.json"_s);
        QVERIFY(test::writeFile(spec,
                                QJsonDocument(QJsonObject{
                                                  {u"transform"_s, transform},
                                                  {u"images"_s, QJsonArray::fromStringList(images)},
                                              })
                                    .toJson()));
        const QString weights = m_dir.filePath(arch + u"-torchvision.pth"_s);
        QStringList args = {u"theirs"_s, arch, QString::number(classes), weights, spec};
        if (arch == u"small_cnn") {
            const QString source = m_dir.filePath(u"smallcnn.py"_s);
            QVERIFY(test::writeFile(source, smallCnnPythonSource().toUtf8()));
            args.append(source);
        }
        const test::ProcessResult run = test::runOracle(u"training_oracle.py"_s, args, 300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        // The probabilities say something: not the near-uniform ones of a fresh head.
        QVERIFY2(out.value(u"spread"_s).toDouble() > 0.2,
                 qPrintable(QString::number(out.value(u"spread"_s).toDouble())));

        // Key for key, in order, with our shapes and dtypes: what load_state_dict(strict=True)
        // needs, and what our state_dict() order promises.
        auto file = ckpt::readCheckpoint(weights);
        QVERIFY2(file, qPrintable(file.errorMessage()));
        auto ours = modelTarget(arch, classes);
        QVERIFY(ours);
        QCOMPARE(ckpt::targetFromStateDict(file->root), ours.value());
        QVERIFY(ckpt::loadReport(file->root, ours.value()).loadsStrictly());

        ClassifierOptions options;
        options.device = u"cpu"_s;
        options.arch = arch;
        options.valTransforms = transform;
        for (int i = 0; i < classes; ++i)
            options.classes.append(QString::number(i));
        auto classifier = Classifier::load(weights, options);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));
        QVERIFY2(classifier->notes().isEmpty(), qPrintable(classifier->notes().join(u'\n')));
        auto predictions = classifier->predict(images, classes);
        QVERIFY(predictions);
        QCOMPARE(predictions->size(), images.size());
        const QJsonObject theirs = out.value(u"probabilities"_s).toObject();
        for (const ImagePrediction &p : predictions.value()) {
            QVERIFY2(p.error.isEmpty(), qPrintable(p.error));
            const QJsonArray expected = theirs.value(p.path).toArray();
            QCOMPARE(expected.size(), classes);
            QCOMPARE(int(p.top.size()), classes);
            for (const auto &[index, probability] : p.top) {
                const double diff = std::abs(probability - expected[index].toDouble());
                QVERIFY2(diff < 1e-4,
                         qPrintable(u"%1, class %2: %3 vs torchvision's %4"_s.arg(p.path)
                                        .arg(index)
                                        .arg(probability)
                                        .arg(expected[index].toDouble())));
            }
        }
    }

    void lossFallsAndSignals()
    {
        Recorder r;
        TrainConfig c = baseConfig(u"run-basic"_s);
        Trainer trainer(c);
        const TrainFinish f = trainer.run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        // Exactly one terminal signal, last; started first; one epoch report per epoch.
        QCOMPARE(r.finished, 1);
        QCOMPARE(r.events.front(), u"started"_s);
        QCOMPARE(r.events.back(), u"finished"_s);
        QCOMPARE(int(r.epochs.size()), 2);
        QCOMPARE(r.start.trainSamples, 400);
        // The small CNN keeps 7×7 maps of 28×28 images: no advice to upscale.
        QVERIFY2(!r.start.notes.join(u'\n').contains(u"last stage"_s),
                 qPrintable(r.start.notes.join(u'\n')));
        QCOMPARE(r.start.valSamples, 400);
        QCOMPARE(r.start.device, u"cpu"_s);
        const int perEpoch = 400 / 32; // drop_last
        QCOMPARE(r.start.batchesPerEpoch, perEpoch);
        QCOMPARE(int(r.steps.size()), 2 * perEpoch);
        for (size_t i = 0; i < r.steps.size(); ++i) {
            QCOMPARE(r.steps[i].step, qint64(i + 1));
            QCOMPARE(r.steps[i].totalSteps, qint64(2 * perEpoch));
        }
        // The loss falls: the second epoch's mean below the first's, and the validation
        // accuracy is well above chance (10%).
        QVERIFY2(
            r.epochs[1].record.trainLoss < r.epochs[0].record.trainLoss,
            qPrintable(
                u"%1 → %2"_s.arg(r.epochs[0].record.trainLoss).arg(r.epochs[1].record.trainLoss)));
        QVERIFY(r.epochs[1].record.valAccuracy > 0.3);
        // The evaluation agrees with itself: its confusion matrix counts every val image.
        const auto &evaluation = r.epochs[1].evaluation;
        QVERIFY(evaluation);
        qint64 total = 0;
        for (qint64 v : evaluation->confusion)
            total += v;
        QCOMPARE(total, 400);
        QCOMPARE(evaluation->accuracy, r.epochs[1].record.valAccuracy);
        // The run folder.
        for (const char *name :
             {"config.json", "metrics.csv", "steps.csv", "last.pth", "best.pth", "load_model.py"})
            QVERIFY2(QFile::exists(c.outDir + u'/' + QLatin1String(name)), name);
        // load_model.py rebuilds the small CNN in Python and loads last.pth into it.
        const test::ProcessResult python = test::runProcess(
            test::oraclePython(),
            {u"-c"_s,
             u"import os, sys; os.chdir(sys.argv[1]); exec(open('load_model.py').read()); "
             "print(type(model).__name__, sum(p.numel() for p in model.parameters()))"_s,
             c.outDir});
        QVERIFY2(python.exitCode == 0, python.err.constData());
        QCOMPARE(python.out.trimmed(),
                 QByteArray("SmallCNN ")
                     + QByteArray::number(findModelArch(u"small_cnn"_s)->parameters10));
        auto history = readRunHistory(c.outDir);
        QVERIFY(history);
        QCOMPARE(history->epochs.size(), 2);
        QCOMPARE(history->steps.size(), 2 * perEpoch);
        QCOMPARE(history->epochs[1].valAccuracy, r.epochs[1].record.valAccuracy);
        auto summary = summarizeTrainingCheckpoint(c.outDir + u"/last.pth"_s);
        QVERIFY(summary);
        QCOMPARE(summary->epoch, 2);
        QCOMPARE(summary->arch, u"small_cnn"_s);
        QCOMPARE(summary->classes, r.start.classes);
        QVERIFY(summary->hasOptimizerState && summary->hasRngState && !summary->midEpoch);
    }

    void stopTakesEffectWithinOneBatch()
    {
        TrainConfig c = baseConfig(u"run-stop"_s);
        c.epochs = 20;
        Trainer trainer(c);
        // stop() from the step callback (another thread may call it too): the request lands at
        // a known step, whatever the machine's load.
        constexpr qint64 kStopAt = 5;
        Recorder r;
        TrainCallbacks callbacks = r.callbacks();
        auto record = callbacks.step;
        callbacks.step = [&](const StepProgress &p) {
            record(p);
            if (p.step == kStopAt)
                trainer.stop();
        };
        const TrainFinish f = trainer.run(callbacks);
        QCOMPARE(f.outcome, TrainOutcome::Stopped);
        QCOMPARE(r.finished, 1);
        QVERIFY2(f.steps <= kStopAt + 1,
                 qPrintable(u"stop at step %1, ended at %2"_s.arg(kStopAt).arg(f.steps)));
    }

    /// A stop that comes while the run is prepared (here: while it loads its start-up weights,
    /// after the dataset scan) ends it before it writes anything: no run folder is left, and
    /// no start is announced. With or without a save: there is nothing to save yet.
    void stopWhilePreparingWritesNothing_data()
    {
        QTest::addColumn<bool>("save");
        QTest::newRow("stop") << false;
        QTest::newRow("save and stop") << true;
    }
    void stopWhilePreparingWritesNothing()
    {
        QFETCH(bool, save);
        const QString weights = m_dir.filePath(u"small-initial.pth"_s);
        if (!QFileInfo::exists(weights))
            QVERIFY(exportInitialWeights(u"small_cnn"_s, 10, 3, weights));
        TrainConfig c = baseConfig(save ? u"run-stop-prepare-save"_s : u"run-stop-prepare"_s);
        c.outDir += u"/nested"_s; // two folders made for the lock: both go again
        c.weightsPath = weights;
        Trainer trainer(c);
        Recorder r;
        TrainCallbacks callbacks = r.callbacks();
        QStringList statuses;
        callbacks.status = [&](const QString &text) {
            statuses.append(text);
            if (text.startsWith(u"Loading weights"_s))
                trainer.stop(save); // stop() from another thread lands the same way
        };
        const TrainFinish f = trainer.run(callbacks);
        QVERIFY2(statuses.join(u'\n').contains(u"Loading weights"_s),
                 qPrintable(statuses.join(u'\n')));
        QCOMPARE(f.outcome, TrainOutcome::Stopped);
        QCOMPARE(f.message, u"Stopped before the first batch"_s);
        QCOMPARE(r.events, std::vector<QString>{u"finished"_s});
        QVERIFY(!QFileInfo::exists(QFileInfo(c.outDir).absolutePath()));
    }

    void pauseHoldsAndStopEndsAPause()
    {
        TrainConfig c = baseConfig(u"run-pause"_s);
        c.epochs = 20;
        Trainer trainer(c);
        // The pauses are requested from the step callback, so they land at known steps, and
        // callbacks.held says when the loop really holds: no sleeps, no guessing.
        constexpr qint64 kFirstPause = 3;
        constexpr qint64 kSecondPause = 5;
        std::atomic<qint64> seen{0};
        std::atomic_int holds{0};
        std::atomic_int finished{0};
        TrainCallbacks callbacks;
        callbacks.step = [&](const StepProgress &p) {
            seen = p.step;
            if (p.step == kFirstPause || p.step == kSecondPause)
                trainer.pause();
        };
        callbacks.held = [&] {
            ++holds;
        };
        callbacks.finished = [&](const TrainFinish &) {
            ++finished;
        };
        TrainFinish f;
        std::thread runner([&] { f = trainer.run(callbacks); });
        // A failed check below must not leave the run going (nor the thread unjoined).
        auto stopAndJoin = qScopeGuard([&] {
            trainer.stop();
            runner.join();
        });
        // Until `condition` holds or the run has ended; the deadline only guards against a hang.
        const auto waitUntil = [&](const auto &condition) {
            const QDeadlineTimer deadline(600'000);
            while (!condition() && finished.load() == 0 && !deadline.hasExpired())
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            return condition();
        };
        QVERIFY(waitUntil([&] { return holds.load() == 1; }));
        QVERIFY(trainer.isPaused());
        QCOMPARE(seen.load(), kFirstPause); // held right after the step that asked
        trainer.resume();
        QVERIFY(waitUntil([&] { return holds.load() == 2; }));
        QCOMPARE(seen.load(), kSecondPause);
        trainer.stop(); // while paused
        stopAndJoin.dismiss();
        runner.join();
        QCOMPARE(f.outcome, TrainOutcome::Stopped);
        QCOMPARE(f.steps, kSecondPause);
        QCOMPARE(finished.load(), 1);
    }

    /// Stopping inside epoch 2 with a save, then resuming, gives the same run as one without a
    /// break: the same losses step by step and the same final weights, bit for bit.
    void exactResumeContinuesTheTrajectory()
    {
        TrainConfig whole = baseConfig(u"run-whole"_s);
        Trainer a(whole);
        const TrainFinish fa = a.run();
        QVERIFY2(fa.outcome == TrainOutcome::Completed, qPrintable(fa.message));

        TrainConfig first = baseConfig(u"run-split"_s);
        const int perEpoch = 400 / 32;
        first.maxSteps = perEpoch + 3;
        Trainer b(first);
        const TrainFinish fb = b.run();
        QCOMPARE(fb.outcome, TrainOutcome::Stopped);
        QCOMPARE(fb.steps, qint64(perEpoch + 3));
        auto summary = summarizeTrainingCheckpoint(first.outDir + u"/last.pth"_s);
        QVERIFY(summary);
        QVERIFY(summary->midEpoch);
        QCOMPARE(summary->step, qint64(perEpoch + 3));

        TrainConfig resumed = baseConfig(u"run-split"_s);
        resumed.resumePath = first.outDir + u"/last.pth"_s;
        resumed.lr = 123.0; // ignored: an exact resume takes the run's own settings
        Recorder r;
        Trainer c(resumed);
        const TrainFinish fc = c.run(r.callbacks());
        QVERIFY2(fc.outcome == TrainOutcome::Completed, qPrintable(fc.message));
        QCOMPARE(r.start.startEpoch, 2);
        QCOMPARE(r.start.startStep, qint64(perEpoch + 3));
        QCOMPARE(r.start.history.epochs.size(), 1); // the curves continue
        QCOMPARE(r.start.history.steps.size(), perEpoch + 3);
        QCOMPARE(r.steps.front().step, qint64(perEpoch + 4));

        const QMap<qint64, QString> lossesWhole = stepLosses(whole.outDir);
        const QMap<qint64, QString> lossesSplit = stepLosses(resumed.outDir);
        QCOMPARE(lossesSplit.size(), 2 * perEpoch);
        QCOMPARE(lossesSplit, lossesWhole);
        auto diff = ckpt::diffStateDicts(modelWeights(whole.outDir + u"/last.pth"_s),
                                         modelWeights(resumed.outDir + u"/last.pth"_s));
        QVERIFY(diff);
        QVERIFY2(diff->identical(), qPrintable(diff->summary));
        auto historyWhole = readRunHistory(whole.outDir);
        auto historySplit = readRunHistory(resumed.outDir);
        QCOMPARE(historySplit->epochs.size(), 2);
        QCOMPARE(historySplit->epochs[1].valAccuracy, historyWhole->epochs[1].valAccuracy);
    }

    /// A run trained with 1 compute thread, resumed in a process that uses 2: the resume
    /// restores the run's count (and says so), so the losses are bit for bit those of the run
    /// without a break, and the process's count is back afterwards. Asking for another count
    /// explicitly is allowed, with a warning that the continuation is not bit-identical.
    void exactResumeKeepsTheThreadCount()
    {
        QCOMPARE(computeThreads(), 2); // initTestCase's
        TrainConfig whole = baseConfig(u"run-threads-whole"_s);
        whole.threads = 1;
        QVERIFY(Trainer(whole).run().outcome == TrainOutcome::Completed);
        QCOMPARE(computeThreads(), 2);
        QJsonObject config
            = QJsonDocument::fromJson([&] {
                  QFile file(whole.outDir + u"/config.json"_s);
                  return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
              }())
                  .object();
        QCOMPARE(config.value(u"threads"_s).toInt(), 1);

        TrainConfig first = baseConfig(u"run-threads-split"_s);
        first.threads = 1;
        first.maxSteps = 400 / 32 + 3;
        QCOMPARE(Trainer(first).run().outcome, TrainOutcome::Stopped);
        const QString other = m_dir.filePath(u"run-threads-other"_s);
        QVERIFY(QDir().mkpath(other));
        QVERIFY(QFile::copy(first.outDir + u"/last.pth"_s, other + u"/last.pth"_s));

        TrainConfig resumed = baseConfig(u"run-threads-split"_s); // threads 0: not asked for
        resumed.resumePath = first.outDir + u"/last.pth"_s;
        Recorder r;
        const TrainFinish f = Trainer(resumed).run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QCOMPARE(r.start.threads, 1);
        const QString notes = r.start.notes.join(u'\n');
        QVERIFY2(notes.contains(u"1 compute thread(s), as the run was trained (not 2)"_s),
                 qPrintable(notes));
        QCOMPARE(stepLosses(resumed.outDir), stepLosses(whole.outDir));
        QCOMPARE(computeThreads(), 2);

        TrainConfig asked = baseConfig(u"run-threads-other"_s);
        asked.resumePath = other + u"/last.pth"_s;
        asked.threads = 2;
        asked.maxSteps = 400 / 32 + 4; // one step is enough to see the warning
        Recorder warned;
        QCOMPARE(Trainer(asked).run(warned.callbacks()).outcome, TrainOutcome::Stopped);
        QCOMPARE(warned.start.threads, 2);
        const QString warning = warned.start.notes.join(u'\n');
        QVERIFY2(warning.contains(u"2 compute thread(s) asked for, the run was trained with 1"_s)
                     && warning.contains(u"not bit-identical"_s),
                 qPrintable(warning));
    }

    void weightsOnlyResumeStartsANewSchedule()
    {
        TrainConfig c = baseConfig(u"run-weights-only"_s);
        c.epochs = 1;
        c.resumePath = m_dir.filePath(u"run-basic/last.pth"_s);
        c.resumeWeightsOnly = true;
        c.optimizer = OptimizerKind::Adam;
        c.lr = 1e-3;
        Recorder r;
        Trainer trainer(c);
        const TrainFinish f = trainer.run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QCOMPARE(r.start.startEpoch, 1);
        QCOMPARE(r.start.startStep, qint64(0));
        QVERIFY(r.start.notes.join(u' ').contains(u"new optimizer"_s));
        // Starting from trained weights: better than chance from the first epoch.
        QVERIFY(r.epochs.front().record.valAccuracy > 0.3);
        auto file = ckpt::readCheckpoint(c.outDir + u"/last.pth"_s);
        QVERIFY(file);
        const ckpt::Value state = file->root.value(u"optimizer_state_dict").value(u"state");
        QVERIFY(state.size() > 0);
        QVERIFY(state.entries().first().second.value(u"exp_avg"_s).isTensor());
    }

    void startFromWeightsReplacesTheHead()
    {
        // A torchvision-layout resnet18 with 5 classes, saved by DataParallel ("module."): the
        // body loads, the 10-class head is re-initialised, and the note says so.
        const QString source = m_dir.filePath(u"r18-5.pth"_s);
        QVERIFY(exportInitialWeights(u"resnet18"_s, 5, 3, source));
        auto file = ckpt::readCheckpoint(source);
        QVERIFY(file);
        auto prefixed
            = ckpt::applyOperations(file->root, {ckpt::Operation(ckpt::AddPrefix{u"module."_s})});
        QVERIFY(prefixed);
        const QString dataParallel = m_dir.filePath(u"r18-5-dp.pth"_s);
        QVERIFY(ckpt::writeCheckpoint(dataParallel, prefixed->value));

        TrainConfig c = baseConfig(u"run-weights"_s);
        c.arch = u"resnet18"_s;
        c.weightsPath = dataParallel;
        c.maxSteps = 1;
        c.epochs = 1;
        Recorder r;
        Trainer trainer(c);
        const TrainFinish f = trainer.run(r.callbacks());
        QVERIFY2(f.outcome != TrainOutcome::Failed, qPrintable(f.message));
        const QString notes = r.start.notes.join(u'\n');
        QVERIFY2(notes.contains(u"120 of 122 tensors loaded"_s), qPrintable(notes));
        QVERIFY2(notes.contains(u"re-initialised"_s) && notes.contains(u"fc.weight"_s),
                 qPrintable(notes));
        // 28×28 images leave resnet18's last stage with 1×1 maps: the start says so, and how to
        // upscale.
        QVERIFY2(notes.contains(u"on 28×28 images its last stage works on 1×1 maps"_s)
                     && notes.contains(u"transforms.Resize(56)"_s),
                 qPrintable(notes));
    }

    void badInputFailsWithAMessage()
    {
        TrainConfig c = baseConfig(u"run-bad"_s);
        c.trainTransforms
            = u"transforms.Compose([transforms.Resize(32), transforms.Normalize((0.5,), (0.5,))])"_s;
        Recorder r;
        Trainer trainer(c);
        TrainFinish f = trainer.run(r.callbacks());
        QCOMPARE(f.outcome, TrainOutcome::Failed);
        QVERIFY2(f.message.contains(u"train transforms"_s) || f.message.contains(u"ToTensor"_s),
                 qPrintable(f.message));
        QCOMPARE(r.finished, 1);

        // A corrupt image is skipped, counted and listed, and the run goes on.
        const QString broken = m_data + u"/train/Bag/zz-broken.png"_s;
        QVERIFY(test::writeFile(broken, QByteArray("\x89PNG\r\n\x1a\nnot really", 17)));
        TrainConfig d = baseConfig(u"run-broken"_s);
        d.epochs = 1;
        Trainer again(d);
        f = again.run();
        QFile::remove(broken);
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QCOMPARE(f.skippedImages.size(), 1);
        QCOMPARE(f.skippedImages.front().path, broken);
        QVERIFY(f.message.contains(u"1 unreadable image"_s));
    }

    /// The disk fills up in the middle of an epoch (a file size limit: the system refuses the
    /// write as it does on a full disk): the run stops at that step with a message that names
    /// steps.csv, the reason and what to do; the file ends with its last complete row, and holds
    /// every step that was reported.
    void fullDiskStopsTheRunAtOnce()
    {
        // The folder's other files come first: the limit lets them and the first rows through.
        TrainConfig probe = baseConfig(u"run-full-probe"_s);
        probe.maxSteps = 1;
        QCOMPARE(Trainer(probe).run().outcome, TrainOutcome::Stopped);
        qint64 largest = 0;
        for (const QString &name : {u"config.json"_s, u"load_model.py"_s, u"metrics.csv"_s})
            largest = std::max(largest, QFileInfo(probe.outDir + u'/' + name).size());
        const qint64 limit = largest + 256;

        TrainConfig c = baseConfig(u"run-full"_s);
        c.batchSize = 2; // 200 steps in the epoch: steps.csv outgrows the limit within it
        c.epochs = 1;
        Recorder r;
        TrainFinish f;
        {
            const test::FileSizeLimit full(limit);
            QVERIFY(full.isActive());
            f = Trainer(c).run(r.callbacks());
        }
        QCOMPARE(f.outcome, TrainOutcome::Failed);
        QCOMPARE(r.finished, 1);
        QVERIFY2(f.message.contains(QDir::toNativeSeparators(c.outDir + u"/steps.csv"_s))
                     && f.message.contains(qt_error_string(EFBIG))
                     && f.message.contains(u"start the run again"_s),
                 qPrintable(f.message));
        QVERIFY(!r.steps.empty());
        QVERIFY(r.steps.back().step < 200);
        QFile steps(c.outDir + u"/steps.csv"_s);
        QVERIFY(steps.open(QIODevice::ReadOnly));
        const QByteArray text = steps.readAll();
        QVERIFY(text.size() <= limit);
        QVERIFY(text.endsWith('\n'));
        const QMap<qint64, QString> losses = stepLosses(c.outDir);
        QCOMPARE(losses.size(), qsizetype(r.steps.size()));
        QCOMPARE(losses.lastKey(), r.steps.back().step);
        QVERIFY(!QFileInfo::exists(c.outDir + u"/last.pth"_s));
    }

    /// config.json cannot be written when a run resumes: the run stops before training, the
    /// previous config.json stays as it was, and the message says to resume again.
    void refusedConfigWriteKeepsThePreviousFile()
    {
        TrainConfig c = baseConfig(u"run-full-config"_s);
        c.maxSteps = 2;
        QCOMPARE(Trainer(c).run().outcome, TrainOutcome::Stopped);
        QFile config(c.outDir + u"/config.json"_s);
        QVERIFY(config.open(QIODevice::ReadOnly));
        const QByteArray before = config.readAll();
        config.close();
        const QStringList files = QDir(c.outDir).entryList(QDir::Files | QDir::Hidden);

        TrainConfig resumed = baseConfig(u"run-full-config"_s);
        resumed.resumePath = c.outDir + u"/last.pth"_s;
        TrainFinish f;
        {
            const test::FileSizeLimit full(256);
            f = Trainer(resumed).run();
        }
        QCOMPARE(f.outcome, TrainOutcome::Failed);
        QVERIFY2(f.message.contains(u"config.json"_s) && f.message.contains(qt_error_string(EFBIG))
                     && f.message.contains(u"resume from"_s),
                 qPrintable(f.message));
        QVERIFY(config.open(QIODevice::ReadOnly));
        QCOMPARE(config.readAll(), before);
        QCOMPARE(QDir(c.outDir).entryList(QDir::Files | QDir::Hidden), files);
    }

    /// Two runs on one folder: the second is refused at once, naming the process that holds
    /// the folder, and writes nothing; the first goes on undisturbed. Afterwards the folder is
    /// free again.
    void secondRunOnAFolderIsRefused()
    {
        TrainConfig c = baseConfig(u"run-locked"_s);
        c.epochs = 1;
        Trainer first(c);
        std::atomic_bool held{false};
        TrainCallbacks callbacks;
        callbacks.step = [&](const StepProgress &p) {
            if (p.step == 2)
                first.pause();
        };
        callbacks.held = [&] {
            held = true;
        };
        TrainFinish f1;
        std::thread runner([&] { f1 = first.run(callbacks); });
        while (!held.load())
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
        const auto folderState = [&] {
            QByteArray state;
            for (const QFileInfo &file : QDir(c.outDir).entryInfoList(QDir::Files | QDir::Hidden))
                state += file.fileName().toUtf8() + ' ' + QByteArray::number(file.size()) + ' '
                    + QByteArray::number(file.lastModified().toMSecsSinceEpoch()) + '\n';
            return state;
        };
        const QByteArray before = folderState();

        Recorder r;
        const TrainFinish f2 = Trainer(c).run(r.callbacks());
        const QByteArray after = folderState();
        first.resume();
        runner.join();
        QCOMPARE(f2.outcome, TrainOutcome::Failed);
        QCOMPARE(r.events, std::vector<QString>{u"finished"_s}); // refused before it started
        QVERIFY2(
            f2.message.contains(u"in use by another training run"_s)
                && f2.message.contains(u"process %1"_s.arg(QCoreApplication::applicationPid())),
            qPrintable(f2.message));
        QVERIFY2(f1.outcome == TrainOutcome::Completed, qPrintable(f1.message));
        QCOMPARE(after, before); // the refused run wrote nothing
        QCOMPARE(stepLosses(c.outDir).size(), 400 / 32);

        // Free again: a run after it goes ahead.
        TrainConfig again = c;
        again.maxSteps = 1;
        const TrainFinish f3 = Trainer(again).run();
        QVERIFY2(f3.outcome == TrainOutcome::Stopped, qPrintable(f3.message));
        QVERIFY(!QFileInfo::exists(c.outDir + u"/.ifstudio-run.lock"_s));
    }

    void hugeImageIsSkippedAndTheRunGoesOn()
    {
        // One 12000 × 12000 PNG among the 28 × 28 images (PIL loads it, with a
        // DecompressionBombWarning), and transforms without a Resize. The batch was sized from
        // it (64 × 3 × 12000² floats) and the run aborted with std::bad_alloc. Now the batches
        // keep the images' shape and the huge one is skipped, listed with what to do.
        const QString huge = m_data + u"/train/Bag/zz-huge.png"_s;
        {
            QImage zeros(12000, 12000, QImage::Format_Grayscale8);
            zeros.fill(0);
            QVERIFY(zeros.save(huge));
        }
        TrainConfig c = baseConfig(u"run-huge"_s);
        c.epochs = 1;
        c.trainTransforms
            = u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])"_s;
        Trainer trainer(c);
        const TrainFinish f = trainer.run();
        // A dataset of nothing but such images: the run fails cleanly, saying what to do.
        const QString only = m_dir.filePath(u"huge-only"_s);
        for (const QString &cls : {u"a"_s, u"b"_s}) {
            QVERIFY(QDir().mkpath(only + u'/' + cls));
            QVERIFY(QFile::copy(huge, only + u'/' + cls + u"/huge.png"_s));
        }
        QFile::remove(huge);
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QCOMPARE(f.skippedImages.size(), 1);
        QCOMPARE(f.skippedImages.front().path, huge);
        const QString why = f.skippedImages.front().message;
        QVERIFY2(why.contains(u"[3, 12000, 12000]"_s), qPrintable(why));
        QVERIFY2(why.contains(u"Resize"_s), qPrintable(why));
        QVERIFY2(f.message.contains(u"skipped"_s), qPrintable(f.message));

        TrainConfig d = baseConfig(u"run-huge-only"_s);
        d.dataRoot = only;
        d.valSplit = 0;
        d.epochs = 1;
        d.trainTransforms = c.trainTransforms;
        Trainer failing(d);
        const TrainFinish g = failing.run();
        QCOMPARE(g.outcome, TrainOutcome::Failed);
        // Refused per image (the file is named) or, where a worker may hold such a tensor, per
        // batch: either way the size and the fix are given.
        QVERIFY2(g.message.contains(u"[3, 12000, 12000]"_s), qPrintable(g.message));
        QVERIFY2(g.message.contains(u"Resize"_s), qPrintable(g.message));
    }

    /// Our optimizers and schedules against torch.optim's, step for step: full-batch resnet18
    /// runs (the gradient does not depend on the order of the samples) replayed in Python from
    /// the same starting weights, with the run's thread count (which decides how the float32
    /// sums round: see the oracle).
    void optimizersAndSchedulesMatchTorch_data()
    {
        QTest::addColumn<QString>("optimizer");
        QTest::addColumn<QString>("schedule");
        QTest::newRow("sgd nesterov onecycle label-smoothing") << u"sgd"_s << u"onecycle"_s;
        QTest::newRow("adam cosine warm-up clipping") << u"adam"_s << u"cosine"_s;
        QTest::newRow("adamw step") << u"adamw"_s << u"step"_s;
    }
    void optimizersAndSchedulesMatchTorch()
    {
        QFETCH(QString, optimizer);
        QFETCH(QString, schedule);
        const QString initial = m_dir.filePath(u"r18-initial.pth"_s);
        if (!QFileInfo::exists(initial))
            QVERIFY(exportInitialWeights(u"resnet18"_s, 10, 3, initial));
        TrainConfig c = baseConfig(u"optim-"_s + optimizer);
        c.arch = u"resnet18"_s;
        c.weightsPath = initial;
        c.trainTransforms
            = u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])"_s;
        c.batchSize = 400; // the whole training set: one step per epoch
        c.epochs = 3;
        c.optimizer = *optimizerFromName(optimizer);
        c.schedule = *scheduleFromName(schedule);
        if (optimizer == u"sgd") {
            c.nesterov = true;
            c.labelSmoothing = 0.1;
        } else if (optimizer == u"adam") {
            c.lr = 1e-3;
            c.weightDecay = 1e-4;
            c.warmupEpochs = 1;
            c.gradClipNorm = 1.0;
        } else {
            c.lr = 1e-3;
            c.weightDecay = 0.01;
            c.stepEpochs = 2;
            c.stepGamma = 0.1;
        }
        c.saveEveryEpochs = 1; // epoch_NNN.pth: the state after each step
        // NCHW, which the tolerances below were measured on: with channels_last the kernels sum
        // in other orders, and reordering the samples alone moves Adam's step by up to 9%
        // (the oracle replays either layout, from config.json).
        c.memoryFormat = MemoryFormat::Contiguous;
        c.amp = AmpMode::Off; // float32 against torch.optim in float32 (bf16: its own test)
        Recorder r;
        Trainer trainer(c);
        const TrainFinish f = trainer.run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QVERIFY(r.start.threads > 0);

        const test::ProcessResult run
            = test::runOracle(u"training_oracle.py"_s,
                              {u"optimizer"_s, c.outDir, initial, m_data + u"/train"_s,
                               QString::number(r.start.threads)},
                              300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray steps
            = QJsonDocument::fromJson(run.out).object().value(u"steps"_s).toArray();
        QCOMPARE(steps.size(), c.epochs);
        for (const QJsonValue &value : steps) {
            const QJsonObject s = value.toObject();
            const QString at
                = u"%1 %2, step %3: "_s.arg(optimizer, schedule).arg(s.value(u"step"_s).toInt());
            auto close = [&](const char *ours, const char *torch, double tolerance) {
                const double a = s.value(QLatin1String(ours)).toDouble();
                const double b = s.value(QLatin1String(torch)).toDouble();
                return std::abs(a - b) <= tolerance * std::abs(b);
            };
            const QByteArray detail = at.toUtf8() + QJsonDocument(s).toJson(QJsonDocument::Compact);
            QVERIFY2(close("our_lr", "lr", 1e-8), detail.constData()); // steps.csv: 9 digits
            QVERIFY2(close("our_momentum", "momentum", 1e-12), detail.constData());
            QVERIFY2(close("our_loss", "loss", 1e-5), detail.constData());
            // The weights moved, and moved as torch.optim moves them, up to rounding (see the
            // oracle for the rounding's own figures; the share allows each tensor what summing
            // the samples in another order moves it by).
            QVERIFY(s.value(u"delta_norm"_s).toDouble() > 0.0);
            const double diff = s.value(u"delta_rel_diff"_s).toDouble();
            const double share = s.value(u"mismatch_share"_s).toDouble();
            qInfo().noquote() << at << "|Δours − Δtorch| / |Δtorch| =" << diff
                              << "; share of parameters off by > 1%:" << share
                              << "; rounding alone (samples reversed):"
                              << s.value(u"rounding_rel_diff"_s).toDouble() << "and"
                              << s.value(u"rounding_share"_s).toDouble();
            // OneCycle's last rate (2e-7 here) moves weights by less than float32 resolves:
            // there only the share (with its 1e-6 floor) says something.
            if (s.value(u"lr"_s).toDouble() >= 1e-5)
                QVERIFY2(diff < 2e-3, detail.constData());
            QVERIFY2(share < 1e-4, detail.constData());
        }
    }

    /// What Auto means: bf16 on a CPU with native bf16 for the models it speeds up, float32
    /// elsewhere; float16 is CUDA's; an explicit bf16 runs anywhere (emulated where not native).
    void ampChoices()
    {
        QCOMPARE(resolveAmp(AmpMode::Auto, u"resnet18"_s, false, true).mode, AmpMode::BFloat16);
        QVERIFY(resolveAmp(AmpMode::Auto, u"resnet18"_s, false, true)
                    .note.contains(u"channels_last"_s));
        QCOMPARE(resolveAmp(AmpMode::Auto, u"small_cnn"_s, false, true).mode, AmpMode::BFloat16);
        QCOMPARE(resolveAmp(AmpMode::Auto, u"resnet18"_s, false, false).mode, AmpMode::Off);
        QCOMPARE(resolveAmp(AmpMode::Auto, u"resnet18"_s, true, true).mode, AmpMode::Off);
        QCOMPARE(resolveAmp(AmpMode::Off, u"resnet18"_s, false, true).mode, AmpMode::Off);
        QCOMPARE(resolveAmp(AmpMode::BFloat16, u"small_cnn"_s, false, false).mode,
                 AmpMode::BFloat16);
        QVERIFY(resolveAmp(AmpMode::BFloat16, u"small_cnn"_s, false, false)
                    .note.contains(u"emulated"_s));
        QCOMPARE(resolveAmp(AmpMode::Float16, u"resnet18"_s, false, true).mode, AmpMode::Off);
        QCOMPARE(resolveAmp(AmpMode::Float16, u"resnet18"_s, true, true).mode, AmpMode::Float16);
        QCOMPARE(TrainConfig().amp, AmpMode::Auto);
        QVERIFY(ampFromName(u"auto"_s) == AmpMode::Auto);
        // An exact resume keeps the run's mode unless it asks for one.
        TrainConfig saved = baseConfig(u"s"_s);
        saved.amp = AmpMode::BFloat16;
        TrainConfig current = baseConfig(u"c"_s);
        QCOMPARE(exactResumeConfig(saved, current).amp, AmpMode::BFloat16);
        current.amp = AmpMode::Off;
        QCOMPARE(exactResumeConfig(saved, current).amp, AmpMode::Off);
    }

    /// A bf16 run against Python's torch.autocast("cpu", torch.bfloat16) + channels_last, step
    /// for step (the optimizer oracle replays each full-batch step from our state): the losses
    /// agree within bf16's rounding. In training mode BatchNorm's batch statistics depend on the
    /// order of the samples (ours are shuffled), and in bf16 that order moves the loss about as
    /// much as bf16 itself does (measured: ours 2.48447, Python's in order 2.48511, reversed
    /// 2.48503, float32 2.48429), so the loss alone cannot tell bf16 from float32 here:
    /// bf16ForwardIsPythonsAutocast() shows that autocast is in effect.
    void bf16MatchesPythonAutocast()
    {
        if (!cpuHasNativeBf16())
            QSKIP("no native bf16 on this CPU (AVX512-BF16 or AMX): oneDNN's bf16 path is "
                  "tested where it is");
        const QString initial = m_dir.filePath(u"r18-initial.pth"_s);
        if (!QFileInfo::exists(initial))
            QVERIFY(exportInitialWeights(u"resnet18"_s, 10, 3, initial));
        TrainConfig c = baseConfig(u"bf16-oracle"_s);
        c.arch = u"resnet18"_s;
        c.weightsPath = initial;
        c.trainTransforms
            = u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])"_s;
        c.batchSize = 400;
        c.epochs = 3;
        c.schedule = ScheduleKind::Constant;
        c.lr = 0.02;
        c.saveEveryEpochs = 1;
        c.amp = AmpMode::BFloat16;
        Recorder r;
        const TrainFinish f = Trainer(c).run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QVERIFY2(r.start.runtime.contains(u"AMP bf16"_s), qPrintable(r.start.runtime));
        QVERIFY2(r.start.runtime.contains(u"channels_last"_s), qPrintable(r.start.runtime));
        QCOMPARE(readJsonFile(c.outDir + u"/config.json"_s).value(u"amp"_s).toString(), u"bf16"_s);

        const test::ProcessResult run
            = test::runOracle(u"training_oracle.py"_s,
                              {u"optimizer"_s, c.outDir, initial, m_data + u"/train"_s,
                               QString::number(r.start.threads)},
                              300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray steps
            = QJsonDocument::fromJson(run.out).object().value(u"steps"_s).toArray();
        QCOMPARE(steps.size(), c.epochs);
        for (const QJsonValue &value : steps) {
            const QJsonObject s = value.toObject();
            const double ours = s.value(u"our_loss"_s).toDouble();
            const double theirs = s.value(u"loss"_s).toDouble();
            const double witness = s.value(u"witness_loss"_s).toDouble();
            const double fp32 = s.value(u"loss_fp32"_s).toDouble();
            const QByteArray detail = QJsonDocument(s).toJson(QJsonDocument::Compact);
            qInfo().noquote() << "bf16 step" << s.value(u"step"_s).toInt() << ": ours" << ours
                              << "python autocast" << theirs << "(shuffled" << witness
                              << ") float32" << fp32 << "; Δweights rel"
                              << s.value(u"delta_rel_diff"_s).toDouble() << "(rounding"
                              << s.value(u"rounding_rel_diff"_s).toDouble() << ")";
            // bf16 keeps 8 significant bits: 2^-9 = 2e-3 relative is half a unit of its last
            // place. Measured: 2.6e-4, as far as another shuffle of the samples moves Python's.
            QVERIFY2(std::abs(ours - theirs) <= 2e-3 * std::abs(theirs), detail.constData());
            QVERIFY2(std::abs(witness - theirs) <= 2e-3 * std::abs(theirs), detail.constData());
            QVERIFY2(std::abs(fp32 - theirs) <= 2e-2 * std::abs(theirs), detail.constData());
            // The weights move as Python's do, as far as the rounding witness allows.
            QVERIFY2(s.value(u"delta_rel_diff"_s).toDouble()
                         < 2.0 * s.value(u"rounding_rel_diff"_s).toDouble() + 1e-3,
                     detail.constData());
        }
    }

    /// Autocast is in effect and is Python's: in eval mode (no batch statistics), our bf16
    /// forward pass of resnet18 gives Python's torch.autocast("cpu", torch.bfloat16) +
    /// channels_last probabilities (measured: bit for bit), and differs from float32's by far
    /// more than float rounding (measured: 1.3e-3).
    void bf16ForwardIsPythonsAutocast()
    {
        if (!cpuHasNativeBf16())
            QSKIP("no native bf16 on this CPU (AVX512-BF16 or AMX)");
        const QString weights = m_dir.filePath(u"r18-autocast.pth"_s);
        QVERIFY(exportInitialWeights(u"resnet18"_s, 10, 11, weights));
        const QString transform
            = u"transforms.Compose([transforms.Resize((64, 64)), transforms.ToTensor(), "
              "transforms.Normalize((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))])"_s;
        ClassifierOptions options;
        options.device = u"cpu"_s;
        options.arch = u"resnet18"_s;
        options.valTransforms = transform;
        options.amp = AmpMode::BFloat16;
        auto classifier = Classifier::load(weights, options);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));
        QStringList images;
        QDirIterator it(m_data + u"/val"_s, QDir::Files, QDirIterator::Subdirectories);
        while (it.hasNext() && images.size() < 16)
            images.append(it.next());
        auto predictions = classifier->predict(images, 10);
        QVERIFY(predictions);
        QJsonObject byPath;
        for (const ImagePrediction &p : predictions.value()) {
            std::vector<double> values(10, 0.0);
            for (const auto &[index, probability] : p.top)
                values[size_t(index)] = probability;
            QJsonArray probabilities;
            for (double v : values)
                probabilities.append(v);
            byPath.insert(p.path, probabilities);
        }
        const QString ours = m_dir.filePath(u"r18-autocast.json"_s);
        QVERIFY(test::writeFile(
            ours,
            QJsonDocument(QJsonObject{{u"transform"_s, transform}, {u"predictions"_s, byPath}})
                .toJson()));
        const test::ProcessResult run
            = test::runOracle(u"training_oracle.py"_s,
                              {u"autocast"_s, u"resnet18"_s, u"10"_s, weights, ours}, 300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        const double same = out.value(u"bf16_max_prob_diff"_s).toDouble();
        const double fp32 = out.value(u"fp32_max_prob_diff"_s).toDouble();
        qInfo() << "bf16 forward: max |ours - Python autocast| =" << same
                << "; max |ours - Python float32| =" << fp32;
        QVERIFY2(same <= 1e-6, run.out.constData());
        QVERIFY2(fp32 > 1e-4 && fp32 > 100.0 * same, run.out.constData());
    }

    /// A bf16 run stopped inside epoch 2 and resumed (with amp left at Auto, which takes the
    /// run's recorded mode) continues bit for bit.
    void bf16ResumesExactly()
    {
        if (!cpuHasNativeBf16())
            QSKIP("no native bf16 on this CPU (AVX512-BF16 or AMX)");
        TrainConfig whole = baseConfig(u"bf16-whole"_s);
        whole.amp = AmpMode::BFloat16;
        QVERIFY(Trainer(whole).run().outcome == TrainOutcome::Completed);
        QCOMPARE(readJsonFile(whole.outDir + u"/config.json"_s).value(u"amp"_s).toString(),
                 u"bf16"_s);
        TrainConfig first = baseConfig(u"bf16-split"_s);
        first.amp = AmpMode::BFloat16;
        first.maxSteps = 400 / 32 + 3;
        QCOMPARE(Trainer(first).run().outcome, TrainOutcome::Stopped);
        TrainConfig resumed = baseConfig(u"bf16-split"_s); // amp: Auto, the run's mode
        resumed.resumePath = first.outDir + u"/last.pth"_s;
        Recorder r;
        QVERIFY(Trainer(resumed).run(r.callbacks()).outcome == TrainOutcome::Completed);
        QVERIFY2(r.start.runtime.contains(u"AMP bf16"_s), qPrintable(r.start.runtime));
        QCOMPARE(stepLosses(resumed.outDir), stepLosses(whole.outDir));
        auto diff = ckpt::diffStateDicts(modelWeights(whole.outDir + u"/last.pth"_s),
                                         modelWeights(resumed.outDir + u"/last.pth"_s));
        QVERIFY(diff && diff->identical());
        // The same run in float32 takes another path: bf16 was in effect.
        TrainConfig fp32 = baseConfig(u"bf16-fp32"_s);
        fp32.amp = AmpMode::Off;
        fp32.maxSteps = 3;
        QCOMPARE(Trainer(fp32).run().outcome, TrainOutcome::Stopped);
        QVERIFY(stepLosses(fp32.outDir).value(3) != stepLosses(whole.outDir).value(3));
    }

    /// Head-only fine-tuning: after an epoch every backbone tensor, BatchNorm's running
    /// statistics and counters included, is bit-identical to the start; the head moved; the
    /// optimizer holds the head alone.
    void headOnlyLeavesTheBackboneAsItWas()
    {
        const QString initial = m_dir.filePath(u"cnn-initial.pth"_s);
        QVERIFY(exportInitialWeights(u"small_cnn"_s, 10, 5, initial));
        TrainConfig c = baseConfig(u"finetune-head"_s);
        c.weightsPath = initial;
        c.epochs = 1;
        c.finetune = FinetuneMode::Head;
        Recorder r;
        const TrainFinish f = Trainer(c).run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QVERIFY(r.start.notes.join(u'\n').contains(u"the backbone is frozen"_s));
        const auto [changed, kept]
            = changedAndKept(checkpointRoot(initial), modelWeights(c.outDir + u"/last.pth"_s));
        QCOMPARE(changed, (QStringList{u"classifier.1.weight"_s, u"classifier.1.bias"_s}));
        QVERIFY(kept.contains(u"features.1.running_mean"_s));
        QVERIFY(kept.contains(u"features.1.num_batches_tracked"_s));
        const ckpt::Value groups = checkpointRoot(c.outDir + u"/last.pth"_s)
                                       .value(u"optimizer_state_dict"_s)
                                       .value(u"param_groups"_s);
        QCOMPARE(groups.size(), 1);
        QCOMPARE(groups.at(0).value(u"params"_s).size(), 2);
        QCOMPARE(readJsonFile(c.outDir + u"/config.json"_s).value(u"finetune"_s).toString(),
                 u"head"_s);
    }

    /// Head-then-full: epoch 1 trains the head alone, epoch 2 everything (a second parameter
    /// group at lr × factor); a run stopped inside epoch 1 and resumed crosses the unfreeze
    /// bit for bit, and so does one stopped after it.
    void headThenFullUnfreezesAndResumesExactly()
    {
        const QString initial = m_dir.filePath(u"cnn-initial-htf.pth"_s);
        QVERIFY(exportInitialWeights(u"small_cnn"_s, 10, 7, initial));
        auto configure = [&](const QString &run) {
            TrainConfig c = baseConfig(run);
            c.weightsPath = initial;
            c.epochs = 3;
            c.finetune = FinetuneMode::HeadThenFull;
            c.unfreezeEpoch = 1;
            c.backboneLrFactor = 0.1;
            c.saveEveryEpochs = 1;
            return c;
        };
        const TrainConfig whole = configure(u"htf-whole"_s);
        QVERIFY(Trainer(whole).run().outcome == TrainOutcome::Completed);
        const auto [changed1, kept1] = changedAndKept(
            checkpointRoot(initial), modelWeights(whole.outDir + u"/epoch_001.pth"_s));
        QCOMPARE(changed1.size(), 2); // the head's weight and bias
        const auto [changed2, kept2]
            = changedAndKept(modelWeights(whole.outDir + u"/epoch_001.pth"_s),
                             modelWeights(whole.outDir + u"/epoch_002.pth"_s));
        QVERIFY2(changed2.contains(u"features.0.weight"_s), qPrintable(changed2.join(u' ')));
        QVERIFY(changed2.contains(u"features.1.running_mean"_s));
        const ckpt::Value groups = checkpointRoot(whole.outDir + u"/epoch_002.pth"_s)
                                       .value(u"optimizer_state_dict"_s)
                                       .value(u"param_groups"_s);
        QCOMPARE(groups.size(), 2);
        QCOMPARE(groups.at(1).value(u"lr"_s).toDouble(),
                 groups.at(0).value(u"lr"_s).toDouble() * 0.1);

        for (const int stopAt : {400 / 32 - 2, 2 * (400 / 32) + 1}) {
            const QString name = u"htf-split-%1"_s.arg(stopAt);
            TrainConfig first = configure(name);
            first.maxSteps = stopAt;
            QCOMPARE(Trainer(first).run().outcome, TrainOutcome::Stopped);
            TrainConfig resumed = configure(name);
            resumed.resumePath = first.outDir + u"/last.pth"_s;
            const TrainFinish f = Trainer(resumed).run();
            QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
            QCOMPARE(stepLosses(resumed.outDir), stepLosses(whole.outDir));
            auto diff = ckpt::diffStateDicts(modelWeights(whole.outDir + u"/last.pth"_s),
                                             modelWeights(resumed.outDir + u"/last.pth"_s));
            QVERIFY(diff);
            QVERIFY2(diff->identical(), qPrintable(diff->summary));
        }
    }

    /// The head's and the backbone's parameter groups against torch.optim with two groups and
    /// its scheduler, step for step (full-batch resnet18, as optimizersAndSchedulesMatchTorch):
    /// the head alone in step 1, add_param_group() for the backbone at lr × 0.1 after it.
    void backboneGroupMatchesTorchOptim()
    {
        const QString initial = m_dir.filePath(u"r18-initial.pth"_s);
        if (!QFileInfo::exists(initial))
            QVERIFY(exportInitialWeights(u"resnet18"_s, 10, 3, initial));
        TrainConfig c = baseConfig(u"optim-groups"_s);
        c.arch = u"resnet18"_s;
        c.weightsPath = initial;
        c.trainTransforms
            = u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])"_s;
        c.batchSize = 400;
        c.epochs = 3;
        c.schedule = ScheduleKind::Cosine;
        c.finetune = FinetuneMode::HeadThenFull;
        c.unfreezeEpoch = 1;
        c.backboneLrFactor = 0.1;
        c.saveEveryEpochs = 1;
        c.amp = AmpMode::Off;
        // NCHW, which the tolerances below were measured on (channels_last, now the CPU default,
        // sums in other orders: see optimizersAndSchedulesMatchTorch).
        c.memoryFormat = MemoryFormat::Contiguous;
        Recorder r;
        const TrainFinish f = Trainer(c).run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        const test::ProcessResult run
            = test::runOracle(u"training_oracle.py"_s,
                              {u"optimizer"_s, c.outDir, initial, m_data + u"/train"_s,
                               QString::number(r.start.threads), u"fc."_s},
                              300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonArray steps
            = QJsonDocument::fromJson(run.out).object().value(u"steps"_s).toArray();
        QCOMPARE(steps.size(), c.epochs);
        for (const QJsonValue &value : steps) {
            const QJsonObject s = value.toObject();
            const QByteArray detail = QJsonDocument(s).toJson(QJsonDocument::Compact);
            const QJsonArray theirs = s.value(u"group_lrs"_s).toArray();
            const QJsonArray ours = s.value(u"our_group_lrs"_s).toArray();
            QCOMPARE(ours.size(), s.value(u"step"_s).toInt() == 1 ? 1 : 2);
            QCOMPARE(ours.size(), theirs.size());
            for (qsizetype g = 0; g < ours.size(); ++g)
                QVERIFY2(std::abs(ours[g].toDouble() - theirs[g].toDouble())
                             <= 1e-9 * theirs[g].toDouble(),
                         detail.constData());
            QVERIFY2(std::abs(s.value(u"our_loss"_s).toDouble() - s.value(u"loss"_s).toDouble())
                         <= 1e-5 * s.value(u"loss"_s).toDouble(),
                     detail.constData());
            QVERIFY(s.value(u"delta_norm"_s).toDouble() > 0.0);
            QVERIFY2(s.value(u"delta_rel_diff"_s).toDouble() < 2e-3, detail.constData());
            QVERIFY2(s.value(u"mismatch_share"_s).toDouble() < 1e-4, detail.constData());
        }
    }

    /// The interoperability test: Python loads last.pth (weights-only) into torchvision's
    /// resnet18 with strict=True, the optimizer state into torch.optim.SGD, and reproduces our
    /// predictions on the validation images.
    void pythonLoadsLastPthAndReproducesPredictions()
    {
        TrainConfig c = baseConfig(u"run-r18"_s);
        c.arch = u"resnet18"_s;
        c.epochs = 1;
        c.lr = 0.02;
        Trainer trainer(c);
        const TrainFinish f = trainer.run();
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));

        ClassifierOptions options;
        options.device = u"cpu"_s;
        auto classifier = Classifier::load(f.lastCheckpoint, options);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));
        QStringList classes;
        auto samples = imageFolderSamples(m_data + u"/val"_s, &classes);
        QVERIFY(samples);
        QCOMPARE(classes, classifier->classes());
        QStringList paths;
        for (const LoaderSample &s : samples.value())
            paths.append(s.path);
        auto predictions = classifier->predict(paths, int(classes.size()));
        QVERIFY(predictions);
        QJsonObject ours;
        for (const ImagePrediction &p : predictions.value()) {
            std::vector<double> values(size_t(classes.size()), 0.0);
            for (const auto &[index, probability] : p.top)
                values[size_t(index)] = probability;
            QJsonArray array;
            for (double v : values)
                array.append(v);
            ours.insert(p.path, array);
        }
        // evaluate() and predict() agree.
        auto evaluation = classifier->evaluate(samples.value(), 64, 2);
        QVERIFY(evaluation);
        for (const SamplePrediction &p : evaluation->predictions)
            QCOMPARE(p.predicted, predictions->at(p.sampleIndex).top.front().first);

        const QString oursPath = m_dir.filePath(u"r18-predictions.json"_s);
        QVERIFY(test::writeFile(oursPath, QJsonDocument(ours).toJson()));
        const test::ProcessResult run
            = test::runOracle(u"training_oracle.py"_s,
                              {u"interop"_s, c.outDir, m_data + u"/val"_s, oursPath}, 300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        qInfo().noquote() << "Python loaded last.pth via" << out.value(u"how"_s).toString();
        QVERIFY(out.value(u"strict"_s).toBool());
        QCOMPARE(out.value(u"optimizer_states"_s).toInt(),
                 out.value(u"optimizer_params"_s).toInt());
        QVERIFY(out.value(u"momentum_shapes_ok"_s).toBool());
        QVERIFY(out.value(u"class_to_idx_same"_s).toBool());
        QCOMPARE(out.value(u"compared"_s).toInt(), 400);
        QCOMPARE(out.value(u"agree"_s).toInt(), 400);
        QVERIFY2(out.value(u"max_prob_diff"_s).toDouble() < 1e-4,
                 qPrintable(QString::number(out.value(u"max_prob_diff"_s).toDouble())));
    }

    void cudaPathsWhenAGpuIsThere()
    {
        if (cudaDevices().isEmpty())
            QSKIP("no CUDA device: the GPU path is tested where one is present");
        TrainConfig c = baseConfig(u"run-cuda"_s);
        c.device = u"cuda:0"_s;
        c.amp = AmpMode::BFloat16;
        Recorder r;
        Trainer trainer(c);
        const TrainFinish f = trainer.run(r.callbacks());
        QVERIFY2(f.outcome == TrainOutcome::Completed, qPrintable(f.message));
        QCOMPARE(r.start.device, u"cuda:0"_s);
        QVERIFY(r.epochs[1].record.trainLoss < r.epochs[0].record.trainLoss);
        // A checkpoint written on the GPU loads on the CPU (the writer copies to the host).
        ClassifierOptions options;
        options.device = u"cpu"_s;
        QVERIFY(Classifier::load(f.lastCheckpoint, options));
    }
};

QTEST_GUILESS_MAIN(TstTraining)
#include "tst_training.moc"
