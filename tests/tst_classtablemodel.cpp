// The class table model, streamed and complete, under QAbstractItemModelTester.
#include "datasets/classtablemodel.h"

#include <QAbstractItemModelTester>
#include <QSignalSpy>
#include <QSortFilterProxyModel>
#include <QTest>

using namespace ifs;

class TestClassTableModel : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void streamsAndSorts();
    void warningsAndEmptyClasses();
};

void TestClassTableModel::streamsAndSorts()
{
    ClassTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSortFilterProxyModel proxy;
    proxy.setSourceModel(&model);
    proxy.setSortRole(ClassTableModel::SortRole);
    QAbstractItemModelTester proxyTester(&proxy,
                                         QAbstractItemModelTester::FailureReportingMode::QtTest);

    const QStringList classes{QStringLiteral("cat"), QStringLiteral("dog"), QStringLiteral("emu")};
    model.setClasses(classes);
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.columnCount(), int(ClassTableModel::ColumnCount));
    QCOMPARE(model.index(1, ClassTableModel::NameColumn).data().toString(), QStringLiteral("dog"));
    QCOMPARE(model.index(2, ClassTableModel::IndexColumn).data().toInt(), 2);
    QCOMPARE(
        model.index(0, ClassTableModel::CountColumn).data(ClassTableModel::SortRole).toLongLong(),
        0);

    // Counts arrive while the scan streams: only data changes, no reset.
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    QSignalSpy reset(&model, &QAbstractItemModel::modelReset);
    model.setCounts({5, 1200, 3});
    QCOMPARE(changed.count(), 1);
    QCOMPARE(reset.count(), 0);
    QCOMPARE(model.total(), 1208);
    QCOMPARE(
        model.index(1, ClassTableModel::CountColumn).data(ClassTableModel::SortRole).toLongLong(),
        1200);
    QCOMPARE(model.index(1, ClassTableModel::ShareColumn).data().toString(),
             QStringLiteral("99.3%"));
    // A count vector of the wrong size (a stale split) is ignored.
    model.setCounts({1, 2});
    QCOMPARE(model.total(), 1208);

    // Sorting by count is numeric, not textual ("1,200" vs "5").
    proxy.sort(ClassTableModel::CountColumn, Qt::DescendingOrder);
    QCOMPARE(proxy.index(0, ClassTableModel::NameColumn).data().toString(), QStringLiteral("dog"));
    QCOMPARE(proxy.index(2, ClassTableModel::NameColumn).data().toString(), QStringLiteral("emu"));
    proxy.setFilterKeyColumn(ClassTableModel::NameColumn);
    proxy.setFilterFixedString(QStringLiteral("M"));
    proxy.setFilterCaseSensitivity(Qt::CaseInsensitive);
    QCOMPARE(proxy.rowCount(), 1);
    QCOMPARE(proxy.index(0, 0).data(ClassTableModel::ClassIndexRole).toInt(), 2);

    model.clear();
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(proxy.rowCount(), 0);
}

void TestClassTableModel::warningsAndEmptyClasses()
{
    ClassTableModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setClasses({QStringLiteral(".ipynb_checkpoints"), QStringLiteral("cat")});
    model.setCounts({0, 4});
    model.setClassWarnings({{QStringLiteral(".ipynb_checkpoints"), QStringLiteral("hidden")}});
    QCOMPARE(
        model.index(0, ClassTableModel::NameColumn).data(ClassTableModel::WarningRole).toString(),
        QStringLiteral("hidden"));
    QVERIFY(!model.index(0, ClassTableModel::NameColumn).data(Qt::DecorationRole).isNull());
    QVERIFY(model.index(1, ClassTableModel::NameColumn).data(Qt::DecorationRole).isNull());
    QVERIFY(model.index(0, ClassTableModel::CountColumn).data(Qt::ForegroundRole).isValid());
    QCOMPARE(model.index(1, 0).data(Qt::ToolTipRole).toString(),
             QStringLiteral("class_to_idx[\"cat\"] = 1"));
}

QTEST_MAIN(TestClassTableModel)
#include "tst_classtablemodel.moc"
