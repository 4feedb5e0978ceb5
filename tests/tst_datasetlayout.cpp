// Split detection, split agreement and the dataset warnings.
#include "dataset/datasetlayout.h"
#include "testutil.h"

#include <QDir>
#include <QTemporaryDir>
#include <QTest>

using namespace ifs;
using namespace ifs::test;

namespace {

ImageFolderIndex makeIndex(const QStringList &classes, const std::vector<int64_t> &counts)
{
    ImageFolderIndex index;
    index.root = QStringLiteral("/data");
    index.classes = classes;
    index.counts = counts;
    return index;
}

bool hasKind(const QList<DatasetWarning> &warnings, DatasetWarning::Kind kind)
{
    return std::any_of(warnings.begin(), warnings.end(),
                       [kind](const DatasetWarning &w) { return w.kind == kind; });
}

} // namespace

class TestDatasetLayout : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void detectsSplits_data();
    void detectsSplits();
    void splitMismatch();
    void warnings_data();
    void warnings();
};

void TestDatasetLayout::detectsSplits_data()
{
    QTest::addColumn<QStringList>("folders");
    QTest::addColumn<QStringList>("splits");
    QTest::newRow("train+val") << QStringList{QStringLiteral("train"), QStringLiteral("val")}
                               << QStringList{QStringLiteral("train"), QStringLiteral("val")};
    QTest::newRow("train+test") << QStringList{QStringLiteral("train"), QStringLiteral("test")}
                                << QStringList{QStringLiteral("train"), QStringLiteral("test")};
    QTest::newRow("train+val+test")
        << QStringList{QStringLiteral("test"), QStringLiteral("val"), QStringLiteral("train")}
        << QStringList{QStringLiteral("train"), QStringLiteral("val"), QStringLiteral("test")};
    QTest::newRow("train only is a class")
        << QStringList{QStringLiteral("train"), QStringLiteral("cat")} << QStringList{};
    QTest::newRow("plain classes")
        << QStringList{QStringLiteral("cat"), QStringLiteral("dog")} << QStringList{};
}

void TestDatasetLayout::detectsSplits()
{
    QFETCH(QStringList, folders);
    QFETCH(QStringList, splits);
    QTemporaryDir tmp;
    for (const QString &folder : folders)
        QVERIFY(QDir().mkpath(tmp.path() + u'/' + folder));
    const DatasetLayout layout = detectLayout(tmp.path());
    QCOMPARE(layout.splits, splits);
    QCOMPARE(layout.hasSplits(), !splits.isEmpty());
}

void TestDatasetLayout::splitMismatch()
{
    const ImageFolderIndex train = makeIndex(
        {QStringLiteral("cat"), QStringLiteral("dog"), QStringLiteral("emu")}, {1, 1, 1});
    const ImageFolderIndex same = makeIndex(
        {QStringLiteral("cat"), QStringLiteral("dog"), QStringLiteral("emu")}, {1, 1, 1});
    QVERIFY(compareSplits(QStringLiteral("train"), train, QStringLiteral("val"), same).isEmpty());

    // "dog" missing in val shifts "emu" from 2 to 1.
    const ImageFolderIndex val = makeIndex(
        {QStringLiteral("cat"), QStringLiteral("emu"), QStringLiteral("fox")}, {1, 1, 1});
    const SplitMismatch mismatch
        = compareSplits(QStringLiteral("train"), train, QStringLiteral("val"), val);
    QVERIFY(!mismatch.isEmpty());
    QCOMPARE(mismatch.onlyInFirst, QStringList{QStringLiteral("dog")});
    QCOMPARE(mismatch.onlyInSecond, QStringList{QStringLiteral("fox")});
    QCOMPARE(mismatch.differentIndex, QStringList{QStringLiteral("emu")});
    QVERIFY(mismatch.message().contains(QStringLiteral("“dog” only in train")));
    QVERIFY(mismatch.message().contains(QStringLiteral("silently wrong")));
}

void TestDatasetLayout::warnings_data()
{
    QTest::addColumn<QStringList>("classes");
    QTest::addColumn<QList<qint64>>("counts");
    QTest::addColumn<int>("kind");
    QTest::addColumn<bool>("expected");
    using K = DatasetWarning::Kind;
    const QStringList abc{QStringLiteral("a"), QStringLiteral("b"), QStringLiteral("c")};
    QTest::newRow("balanced") << abc << QList<qint64>{10, 12, 11} << int(K::Imbalance) << false;
    QTest::newRow("imbalanced") << abc << QList<qint64>{10, 100, 11} << int(K::Imbalance) << true;
    QTest::newRow("9.9x is fine") << abc << QList<qint64>{10, 99, 11} << int(K::Imbalance) << false;
    QTest::newRow("hidden") << QStringList{QStringLiteral(".ipynb_checkpoints"),
                                           QStringLiteral("cat")}
                            << QList<qint64>{1, 5} << int(K::HiddenClass) << true;
    QTest::newRow("numeric as text")
        << QStringList{QStringLiteral("1"), QStringLiteral("10"), QStringLiteral("2")}
        << QList<qint64>{1, 1, 1} << int(K::NumericOrder) << true;
    QTest::newRow("zero padded") << QStringList{QStringLiteral("01"), QStringLiteral("02"),
                                                QStringLiteral("10")}
                                 << QList<qint64>{1, 1, 1} << int(K::NumericOrder) << false;
    QTest::newRow("empty class") << abc << QList<qint64>{3, 0, 3} << int(K::EmptyClass) << true;
}

void TestDatasetLayout::warnings()
{
    QFETCH(QStringList, classes);
    QFETCH(QList<qint64>, counts);
    QFETCH(int, kind);
    QFETCH(bool, expected);
    const ImageFolderIndex index
        = makeIndex(classes, std::vector<int64_t>(counts.begin(), counts.end()));
    QCOMPARE(hasKind(analyseDataset(index), DatasetWarning::Kind(kind)), expected);
}

QTEST_GUILESS_MAIN(TestDatasetLayout)
#include "tst_datasetlayout.moc"
