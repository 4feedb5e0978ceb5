// The LR finder against fastai's algorithm: tests/tools/lrfind_oracle.py reimplements
// Learner.lr_find() (schedule, smoothing, stop rule, suggestions) in plain PyTorch and runs it on
// our initial weights and our ramp's batches, in their order; our rates must equal its rates
// exactly, our losses its losses (float tolerance), the stop and the suggestions the same, and
// the model must come back bit for bit. The curve's rules are also checked on their own.
#include "testutil.h"

#include "checkpoint/checkpointreader.h"
#include "checkpoint/checkpointrepair.h"
#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/lrfinder.h"
#include "training/models.h"
#include "training/training.h"

#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QtTest>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>

using namespace ifs;
using namespace Qt::StringLiterals;

namespace {

const QString kTransform
    = u"transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])"_s;

QJsonArray filesOfBatches(const LrFindResult &result)
{
    QJsonArray batches;
    for (const QStringList &files : result.batches)
        batches.append(QJsonArray::fromStringList(files));
    return batches;
}

} // namespace

class TstLrFinder : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data; // Fashion-MNIST, 40 images per class in train/ and val/

    TrainConfig baseConfig() const
    {
        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"small_cnn"_s;
        c.batchSize = 16;
        c.seed = 5;
        c.workers = 2;
        c.device = u"cpu"_s;
        c.trainTransforms = kTransform;
        c.valTransforms = kTransform;
        // float32 in NCHW, as the oracle computes.
        c.amp = AmpMode::Off;
        c.memoryFormat = MemoryFormat::Contiguous;
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
    }

    /// The schedule, smoothing, stop rule and suggestion guards on given losses.
    void curveRules()
    {
        LrFindOptions options;
        options.numIt = 4; // fastai raises it to 6
        LrFinderCurve curve(options);
        QCOMPARE(curve.iterations(), 6);
        QCOMPARE(curve.rate(0), 1e-7);
        QCOMPARE(curve.rate(3), 1e-7 * std::pow(10.0 / 1e-7, 3.0 / 6.0));
        // The first smoothed value is the loss itself (debiased), then the average moves slowly.
        QVERIFY(curve.record(curve.rate(0), 2.0f));
        QVERIFY(std::abs(curve.smoothed().at(0) - 2.0) < 1e-5); // float32, as fastai
        QVERIFY(curve.record(curve.rate(1), 1.0f));
        QVERIFY(curve.smoothed().at(1) > 1.0 && curve.smoothed().at(1) < 2.0);
        // A jump far above 4 × the best stops it: diverged.
        QVERIFY(!curve.record(curve.rate(2), 1000.0f));
        QCOMPARE(curve.stop(), LrFindStop::Diverged);
        QVERIFY(curve.suggestions().isEmpty()); // 3 points, skip_end 5: none left

        LrFinderCurve nan(options);
        QVERIFY(nan.record(nan.rate(0), 1.0f));
        QVERIFY(!nan.record(nan.rate(1), std::numeric_limits<float>::quiet_NaN()));
        QCOMPARE(nan.stop(), LrFindStop::NotFinite);

        options.stopDiv = false;
        LrFinderCurve full(options);
        for (int i = 0; i < 5; ++i)
            QVERIFY(full.record(full.rate(i), 1.0f + float(i * 100)));
        QVERIFY(!full.record(full.rate(5), 1.0f)); // the sixth and last
        QCOMPARE(full.stop(), LrFindStop::Completed);
        QCOMPARE(full.lrs().size(), 6);

        LrFindOptions bad;
        bad.startLr = 0.0;
        QVERIFY(!bad.validate());
        bad.startLr = 1.0;
        bad.endLr = 0.5;
        QVERIFY(!bad.validate());
        QVERIFY(LrFindOptions{}.validate());
    }

    /// The whole finder against the oracle: rates, losses, stop, suggestions; the model after it
    /// equals the weights it started from, bit for bit, while the same ramp in Python changes
    /// them.
    void matchesFastaiOracle_data()
    {
        QTest::addColumn<QString>("optimizer");
        QTest::addColumn<int>("numIt");
        QTest::addColumn<double>("endLr");
        QTest::addColumn<QString>("stop");
        QTest::newRow("sgd, fastai's defaults") << u"sgd"_s << 100 << 10.0 << u"completed"_s;
        QTest::newRow("adam up to 1000: diverges") << u"adam"_s << 40 << 1000.0 << u"diverged"_s;
    }
    void matchesFastaiOracle()
    {
        QFETCH(QString, optimizer);
        QFETCH(int, numIt);
        QFETCH(double, endLr);
        QFETCH(QString, stop);
        const QString initial = m_dir.filePath(u"initial.pth"_s);
        if (!QFileInfo::exists(initial))
            QVERIFY(exportInitialWeights(u"small_cnn"_s, 10, 3, initial));
        TrainConfig c = baseConfig();
        c.weightsPath = initial;
        c.optimizer = *optimizerFromName(optimizer);
        if (c.optimizer == OptimizerKind::Adam)
            c.weightDecay = 1e-4;
        LrFindOptions options;
        options.numIt = numIt;
        options.endLr = endLr;
        options.saveModelTo = m_dir.filePath(u"after-"_s + optimizer + u".pth"_s);
        int progressCalls = 0;
        LrFindCallbacks callbacks;
        callbacks.progress = [&](const LrFindProgress &p) {
            ++progressCalls;
            QCOMPARE(p.iteration, progressCalls);
        };
        auto found = findLearningRate(c, options, callbacks);
        QVERIFY2(found, qPrintable(found.errorMessage()));
        const LrFindResult &ours = found.value();
        QCOMPARE(progressCalls, ours.lrs.size());
        QCOMPARE(ours.batches.size(), ours.lrs.size());
        QVERIFY(ours.start.threads > 0);

        QJsonObject spec{
            {u"arch"_s, c.arch},
            {u"num_classes"_s, 10},
            {u"smallcnn_source"_s, smallCnnPythonSource()},
            {u"initial"_s, initial},
            {u"train_root"_s, QString(m_data + u"/train"_s)},
            {u"transform"_s, kTransform},
            {u"threads"_s, ours.start.threads},
            {u"channels_last"_s, false},
            {u"optimizer"_s, optimizer},
            {u"momentum"_s, c.momentum},
            {u"nesterov"_s, c.nesterov},
            {u"weight_decay"_s, c.weightDecay},
            {u"betas"_s, QJsonArray{c.beta1, c.beta2}},
            {u"eps"_s, c.eps},
            {u"seed"_s, double(c.seed)},
            {u"start_lr"_s, options.startLr},
            {u"end_lr"_s, options.endLr},
            {u"num_it"_s, options.numIt},
            {u"stop_div"_s, options.stopDiv},
            {u"beta"_s, options.beta},
            {u"batches"_s, filesOfBatches(ours)},
        };
        const QString specPath = m_dir.filePath(u"spec-"_s + optimizer + u".json"_s);
        QVERIFY(test::writeFile(specPath, QJsonDocument(spec).toJson()));
        const test::ProcessResult run = test::runOracle(u"lrfind_oracle.py"_s, {specPath}, 300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject theirs = QJsonDocument::fromJson(run.out).object();

        // The same ramp, step for step, ending at the same step for the same reason.
        QCOMPARE(lrFindStopName(ours.stop), stop);
        QCOMPARE(theirs.value(u"stop"_s).toString(), stop);
        QCOMPARE(theirs.value(u"iterations"_s).toInt(), ours.iterations);
        const QJsonArray lrs = theirs.value(u"lrs"_s).toArray();
        const QJsonArray losses = theirs.value(u"losses"_s).toArray();
        const QJsonArray smoothed = theirs.value(u"smoothed"_s).toArray();
        QCOMPARE(lrs.size(), ours.lrs.size());
        double largest = 0.0; // relative loss difference, for the log
        for (qsizetype i = 0; i < lrs.size(); ++i) {
            largest = std::max(largest,
                               std::abs(ours.losses[i] - losses[i].toDouble())
                                   / std::abs(losses[i].toDouble()));
            const QByteArray at = "step " + QByteArray::number(i + 1) + ": ours "
                + QByteArray::number(ours.losses[i], 'g', 9) + ", fastai's "
                + QByteArray::number(losses[i].toDouble(), 'g', 9);
            QVERIFY2(ours.lrs[i] == lrs[i].toDouble(), at.constData()); // exactly
            QVERIFY2(std::abs(ours.losses[i] - losses[i].toDouble())
                         <= 1e-4 * std::abs(losses[i].toDouble()),
                     at.constData());
            QVERIFY2(std::abs(ours.smoothed[i] - smoothed[i].toDouble())
                         <= 1e-4 * std::abs(smoothed[i].toDouble()),
                     at.constData());
        }
        qInfo("%lld steps, stop %s; largest relative loss difference %.3g", qlonglong(lrs.size()),
              qPrintable(lrFindStopName(ours.stop)), largest);
        // The suggestions: the same points of the curve.
        const QJsonObject suggestions = theirs.value(u"suggestions"_s).toObject();
        QCOMPARE(ours.suggestions.size(), suggestions.size());
        QVERIFY(!ours.suggestions.isEmpty());
        for (const LrSuggestion &s : ours.suggestions) {
            const QJsonObject t = suggestions.value(s.name).toObject();
            QVERIFY2(!t.isEmpty(), qPrintable(s.name));
            QCOMPARE(s.lr, t.value(u"lr"_s).toDouble());
            QCOMPARE(s.pointLr, t.value(u"point_lr"_s).toDouble());
            QVERIFY(std::abs(s.pointLoss - t.value(u"point_loss"_s).toDouble())
                    <= 1e-4 * std::abs(s.pointLoss));
        }
        QVERIFY(ours.suggestion(u"steep"_s));
        QVERIFY(ours.suggestion(u"minimum"_s));

        // The model comes back: every tensor of its state dict as it started, bit for bit, while
        // the ramp does change it (in Python, step for step the same).
        QVERIFY(theirs.value(u"state_changed"_s).toBool());
        QVERIFY(theirs.value(u"restored_equal"_s).toBool());
        auto before = ckpt::readCheckpoint(initial);
        auto after = ckpt::readCheckpoint(options.saveModelTo);
        QVERIFY2(before && after,
                 qPrintable(before ? after.errorMessage() : before.errorMessage()));
        auto diff = ckpt::diffStateDicts(before->root, after->root);
        QVERIFY2(diff, qPrintable(diff.errorMessage()));
        QVERIFY2(diff->onlyInA.isEmpty() && diff->onlyInB.isEmpty(), qPrintable(diff->summary));
        QCOMPARE(diff->identicalCount, diff->compared.size());
        QVERIFY(diff->compared.size() > 0);
    }

    /// `ifstudio-cli lr-find` prints what the core finds: the same curve as JSON, a table and
    /// the suggestions as text; train's run-only options are refused.
    void cliPrintsTheSame()
    {
        TrainConfig c = baseConfig();
        LrFindOptions options;
        options.numIt = 30;
        options.endLr = 100.0;
        auto found = findLearningRate(c, options);
        QVERIFY2(found, qPrintable(found.errorMessage()));
        const QStringList args{u"lr-find"_s,
                               u"--data"_s,
                               m_data,
                               u"--batch-size"_s,
                               u"16"_s,
                               u"--seed"_s,
                               u"5"_s,
                               u"--amp"_s,
                               u"off"_s,
                               u"--memory-format"_s,
                               u"contiguous"_s,
                               u"--train-transforms"_s,
                               kTransform,
                               u"--workers"_s,
                               u"2"_s,
                               u"--threads"_s,
                               QString::number(found->start.threads),
                               u"--num-it"_s,
                               u"30"_s,
                               u"--end-lr"_s,
                               u"100"_s};
        const test::ProcessResult json = test::runCli(args + QStringList{u"--json"_s});
        QVERIFY2(json.exitCode == 0, json.err.constData());
        const QJsonObject printed = QJsonDocument::fromJson(json.out).object();
        QCOMPARE(printed, lrFindResultJson(found.value()));

        const test::ProcessResult text = test::runCli(args);
        QVERIFY2(text.exitCode == 0, text.err.constData());
        const QString out = QString::fromUtf8(text.out);
        QVERIFY2(out.contains(u"Suggested learning rates:"_s), text.out.constData());
        QVERIFY2(out.contains(u"← steep"_s), text.out.constData());
        QVERIFY2(out.contains(found->stopMessage), text.out.constData());

        const test::ProcessResult refused
            = test::runCli({u"lr-find"_s, u"--data"_s, m_data, u"--epochs"_s, u"3"_s});
        QCOMPARE(refused.exitCode, 2);
        QVERIFY2(refused.err.contains("does not take --epochs"), refused.err.constData());
    }

    /// A cancel between steps, or before them, ends the finder with a cancellation, soon.
    void cancels()
    {
        TrainConfig c = baseConfig();
        std::atomic_bool cancel{false};
        int steps = 0;
        LrFindCallbacks callbacks;
        callbacks.progress = [&](const LrFindProgress &p) {
            steps = p.iteration;
            if (p.iteration == 3)
                cancel = true;
        };
        auto found = findLearningRate(c, LrFindOptions{}, callbacks, &cancel);
        QVERIFY(!found);
        QVERIFY(found.isCancellation());
        QCOMPARE(steps, 3);

        // A cancel while the data and the model are prepared ends it before the first step.
        steps = 0;
        std::atomic_bool early{true};
        auto before = findLearningRate(c, LrFindOptions{}, callbacks, &early);
        QVERIFY(before.isCancellation());
        QCOMPARE(steps, 0);
    }

    /// Bad options and configurations fail with a message before any work.
    void refusesBadInput()
    {
        TrainConfig c = baseConfig();
        LrFindOptions reversed;
        reversed.startLr = 1.0;
        reversed.endLr = 0.1;
        auto bad = findLearningRate(c, reversed);
        QVERIFY(!bad);
        QVERIFY(bad.errorMessage().contains(u"end rate"_s));
        c.dataRoot = m_dir.filePath(u"missing"_s);
        auto missing = findLearningRate(c, LrFindOptions{});
        QVERIFY(!missing);
        QVERIFY(!missing.isCancellation());
    }
};

QTEST_GUILESS_MAIN(TstLrFinder)
#include "tst_lrfinder.moc"
