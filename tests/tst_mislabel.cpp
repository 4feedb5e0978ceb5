// Likely mislabelled images on real data: Fashion-MNIST with labels flipped on purpose (files
// moved into the next class's folder), a small run trained on it, every train and val image
// ranked by the model's confidence in its given label; precision at k (k = the number flipped);
// the CLI's ranking; relabelling the found ones and undoing it. Real training: labelled slow.
#include "testutil.h"

#include "dataset/quarantine.h"
#include "dataset/sampledata.h"
#include "torch/runtime.h"
#include "training/evaluation.h"
#include "training/mislabel.h"
#include "training/training.h"
#include "training/trainingdata.h"

#include <QDir>
#include <QFileInfo>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QRegularExpression>
#include <QSet>
#include <QTemporaryDir>
#include <QtTest>

using namespace ifs;
using namespace Qt::StringLiterals;

class TestMislabel : public QObject
{
    Q_OBJECT

private:
    QTemporaryDir m_dir;
    QString m_data;
    QString m_checkpoint;
    QSet<QString> m_flipped; ///< absolute paths after the flip
    QStringList m_classes;

    /// Moves every `every`-th image of each class folder of `split` into the next class's folder.
    bool flip(const QString &split, int every)
    {
        const QString root = m_data + u'/' + split;
        for (qsizetype c = 0; c < m_classes.size(); ++c) {
            const QString from = root + u'/' + m_classes[c];
            const QString to = root + u'/' + m_classes[(c + 1) % m_classes.size()];
            // Only the folder's own images: not those flipped into it a moment ago.
            const QStringList files = QDir(from)
                                          .entryList(QDir::Files, QDir::Name)
                                          .filter(QRegularExpression(u"^\\d"_s));
            for (qsizetype i = 0; i < files.size(); i += every) {
                const QString target = to + u"/flipped-"_s + files[i];
                if (!QFile::rename(from + u'/' + files[i], target))
                    return false;
                m_flipped.insert(QFileInfo(target).absoluteFilePath());
            }
        }
        return true;
    }

private Q_SLOTS:
    void initTestCase()
    {
        QVERIFY(m_dir.isValid());
        configureRuntime(2);
        SampleDataOptions options;
        options.source = test::fashionMnistSource(m_dir.path(), 300);
        options.limitPerClass = 300;
        auto exported = exportFashionMnist(m_dir.filePath(u"fmnist"_s), options);
        QVERIFY2(exported, qPrintable(exported.errorMessage()));
        m_data = exported->root;
        m_classes
            = QDir(m_data + u"/train"_s).entryList(QDir::Dirs | QDir::NoDotAndDotDot, QDir::Name);
        QCOMPARE(m_classes.size(), 10);
        QVERIFY(flip(u"train"_s, 15)); // 20 of 300 per class
        QVERIFY(flip(u"val"_s, 30)); // 10 of 300 per class
        QCOMPARE(m_flipped.size(), 300);

        TrainConfig c;
        c.dataRoot = m_data;
        c.arch = u"small_cnn"_s;
        c.epochs = 4;
        c.batchSize = 32;
        c.lr = 0.05;
        c.seed = 3;
        c.workers = 2;
        c.device = u"cpu"_s;
        c.amp = AmpMode::Off;
        c.trainTransforms = u"transforms.Compose([transforms.Grayscale(3), transforms.ToTensor(), "
                            u"transforms.Normalize((0.29,), (0.35,))])"_s;
        c.valTransforms = c.trainTransforms;
        c.outDir = m_dir.filePath(u"run"_s);
        const TrainFinish finish = Trainer(c).run();
        QVERIFY2(finish.outcome == TrainOutcome::Completed, qPrintable(finish.message));
        m_checkpoint = finish.lastCheckpoint;
        QVERIFY(QFileInfo::exists(m_checkpoint));
    }

    /// Most flipped images rank first: precision at k, k = the number flipped, in train and val.
    void flippedLabelsRankFirst()
    {
        ClassifierOptions options;
        options.device = u"cpu"_s;
        auto classifier = Classifier::load(m_checkpoint, options);
        QVERIFY2(classifier, qPrintable(classifier.errorMessage()));
        auto scan = scoreDatasetLabels(classifier.value(), m_data);
        QVERIFY2(scan, qPrintable(scan.errorMessage()));
        QCOMPARE(scan->ranked.size(), 6000);
        QVERIFY(scan->failures.isEmpty());
        const qsizetype k = m_flipped.size();
        const double precision = precisionAtK(scan->ranked, m_flipped, k);
        QList<MislabelCandidate> train, val;
        for (const MislabelCandidate &c : scan->ranked)
            (c.split == u"train" ? train : val).append(c);
        const double trainPrecision = precisionAtK(train, m_flipped, 200);
        const double valPrecision = precisionAtK(val, m_flipped, 100);
        qInfo("Fashion-MNIST, 6000 images, 300 labels flipped (200 train, 100 val), small_cnn 4 "
              "epochs: precision at k=300 %.3f (train at 200: %.3f, val at 100: %.3f)",
              precision, trainPrecision, valPrecision);
        QVERIFY2(precision > 0.6, qPrintable(QString::number(precision)));
        QVERIFY2(valPrecision > 0.5, qPrintable(QString::number(valPrecision)));
        // The loss ranks the same images (−log of the self-confidence).
        QList<MislabelCandidate> byLoss = scan->ranked;
        rankMislabelCandidates(byLoss, MislabelRanking::Loss);
        QCOMPARE(precisionAtK(byLoss, m_flipped, k), precision);
        QList<MislabelCandidate> byMargin = scan->ranked;
        rankMislabelCandidates(byMargin, MislabelRanking::NormalizedMargin);
        QVERIFY(precisionAtK(byMargin, m_flipped, k) > 0.6);
        // A flipped image's given label is the next class; the model mostly predicts its true one.
        const MislabelCandidate &top = scan->ranked.first();
        QVERIFY(top.selfConfidence <= scan->ranked[1].selfConfidence);
        QVERIFY(top.predicted != top.label);
    }

    /// The CLI lists the same ranking.
    void cliRanks()
    {
        const test::ProcessResult run
            = test::runCli({u"mislabeled"_s, u"--data"_s, m_data, u"--checkpoint"_s, m_checkpoint,
                            u"--top"_s, u"50"_s, u"--json"_s, u"--device"_s, u"cpu"_s},
                           300000);
        QVERIFY2(run.exitCode == 0, run.err.constData());
        const QJsonObject out = QJsonDocument::fromJson(run.out).object();
        QCOMPARE(out.value(u"images"_s).toInt(), 6000);
        const QJsonArray candidates = out.value(u"candidates"_s).toArray();
        QCOMPARE(candidates.size(), 50);
        int flipped = 0;
        for (const QJsonValue &v : candidates) {
            const QJsonObject c = v.toObject();
            flipped
                += m_flipped.contains(QFileInfo(c.value(u"path"_s).toString()).absoluteFilePath());
            QVERIFY(m_classes.contains(c.value(u"given"_s).toString()));
        }
        QVERIFY2(flipped >= 25, qPrintable(QString::number(flipped))); // measured: 32
        const test::ProcessResult text
            = test::runCli({u"mislabeled"_s, u"--data"_s, m_data, u"--checkpoint"_s, m_checkpoint,
                            u"--top"_s, u"3"_s, u"--device"_s, u"cpu"_s},
                           300000);
        QCOMPARE(text.exitCode, 0);
        QCOMPARE(text.out.count('\n'), 4); // a header and three rows
        QCOMPARE(test::runCli({u"mislabeled"_s, u"--data"_s, m_data}).exitCode, 2);
    }

    /// Relabelling the top candidates to their predicted class: the dataset rescans with the
    /// same classes and the new labels; undo restores every file.
    void relabelAndUndo()
    {
        ClassifierOptions options;
        options.device = u"cpu"_s;
        auto classifier = Classifier::load(m_checkpoint, options);
        QVERIFY(classifier);
        QStringList classesBefore;
        auto before = imageFolderSamples(m_data + u"/train"_s, &classesBefore);
        QVERIFY(before);
        auto scan = scoreDatasetLabels(classifier.value(), m_data);
        QVERIFY(scan);
        QList<RelabelMove> moves;
        for (const MislabelCandidate &c : scan->ranked) {
            if (c.split == u"train" && c.predicted != c.label && moves.size() < 20)
                moves.append({c.path, scan->classes[c.predicted]});
        }
        QCOMPARE(moves.size(), 20);
        auto batch = relabelFiles(m_data, moves, defaultQuarantineFolder(m_data));
        QVERIFY2(batch, qPrintable(batch.errorMessage()));
        QStringList classesAfter;
        auto after = imageFolderSamples(m_data + u"/train"_s, &classesAfter);
        QVERIFY(after);
        QCOMPARE(classesAfter, classesBefore); // class_to_idx stays right
        QCOMPARE(after->size(), before->size());
        QHash<QString, int> labels;
        for (const LoaderSample &s : after.value())
            labels.insert(QFileInfo(s.path).absoluteFilePath(), s.label);
        for (qsizetype i = 0; i < moves.size(); ++i) {
            const QString moved = QFileInfo(batch->entries[i].quarantinedPath).absoluteFilePath();
            QCOMPARE(labels.value(moved, -1), int(classesAfter.indexOf(moves[i].targetClass)));
        }
        QVERIFY(undoQuarantine(batch.value()));
        QStringList classesUndone;
        auto undone = imageFolderSamples(m_data + u"/train"_s, &classesUndone);
        QVERIFY(undone);
        QCOMPARE(undone->size(), before->size());
        for (size_t i = 0; i < undone->size(); ++i) {
            QCOMPARE(undone.value()[i].path, before.value()[i].path);
            QCOMPARE(undone.value()[i].label, before.value()[i].label);
        }
    }
};

// The set-up trains for a few minutes on two shared cores: more than QTest's 5 minutes per
// function on a busy machine.
int main(int argc, char **argv)
{
    qputenv("QTEST_FUNCTION_TIMEOUT", "900000");
    QCoreApplication app(argc, argv);
    TestMislabel test;
    QTEST_SET_MAIN_SOURCE_PATH
    return QTest::qExec(&test, argc, argv);
}
#include "tst_mislabel.moc"
