// The checkpoint tree model over files written by real torch: the structure, the columns, lazy
// children, paths, and the totals and tensor statistics the workspace shows beside it.
#include "checkpoint/checkpointreader.h"
#include "checkpoints/checkpointjobs.h"
#include "checkpoints/checkpointtreemodel.h"
#include "testutil.h"

#include <QAbstractItemModelTester>
#include <QJsonDocument>
#include <QJsonObject>
#include <QTemporaryDir>
#include <QTest>

#include <cmath>
#include <vector>

using namespace ifs;
using namespace ifs::ckpt;
using namespace ifs::test;

class TestCheckpointTreeModel : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();
    void resnetStateDict();
    void trainingCheckpoint();
    void optimizerState();
    void nestedStages();
    void totals();
    void tensorBytesAreDistinctStorages();
    void tensorStats();
    void hostileValuesShowSafely();
    void onDemandFileShowsWithoutItsData();

private:
    CheckpointFile read(const QString &name);
    QTemporaryDir m_tmp;
};

CheckpointFile TestCheckpointTreeModel::read(const QString &name)
{
    ReadOptions options;
    options.map = MapLocation::keep();
    Result<CheckpointFile> file = readCheckpoint(m_tmp.filePath(name), options);
    if (!file)
        qWarning("%s", qPrintable(file.errorMessage()));
    return file ? file.value() : CheckpointFile{};
}

void TestCheckpointTreeModel::initTestCase()
{
    QVERIFY(m_tmp.isValid());
    const ProcessResult made = runOracle(QStringLiteral("checkpointsworkspace_oracle.py"),
                                         {QStringLiteral("make"), m_tmp.path()});
    QVERIFY2(made.exitCode == 0, made.err.constData());
}

void TestCheckpointTreeModel::resnetStateDict()
{
    const CheckpointFile file = read(QStringLiteral("resnet18.pt"));
    CheckpointTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRoot(file.root, QStringLiteral("resnet18.pt"));
    QCOMPARE(model.columnCount(), int(CheckpointTreeModel::ColumnCount));
    QCOMPARE(model.rowCount(), 1);
    const QModelIndex root = model.index(0, 0);
    QCOMPARE(root.data().toString(), QStringLiteral("resnet18.pt"));
    QCOMPARE(model.index(0, CheckpointTreeModel::TypeColumn).data().toString(),
             QStringLiteral("collections.OrderedDict"));
    QCOMPARE(model.rowCount(root), 122);
    const QModelIndex conv = model.index(0, 0, root);
    QCOMPARE(conv.data().toString(), QStringLiteral("conv1.weight"));
    auto cell = [&](int column) {
        return conv.siblingAtColumn(column).data().toString();
    };
    QCOMPARE(cell(CheckpointTreeModel::ShapeColumn), QStringLiteral("[64, 3, 7, 7]"));
    QCOMPARE(cell(CheckpointTreeModel::DTypeColumn), QStringLiteral("float32"));
    QCOMPARE(cell(CheckpointTreeModel::DeviceColumn), QStringLiteral("cpu"));
    QCOMPARE(cell(CheckpointTreeModel::TypeColumn), QStringLiteral("torch.Tensor"));
    QCOMPARE(conv.siblingAtColumn(CheckpointTreeModel::SizeColumn)
                 .data(CheckpointTreeModel::BytesRole)
                 .toLongLong(),
             qint64(64 * 3 * 7 * 7 * 4));
    QVERIFY(conv.data(CheckpointTreeModel::IsTensorRole).toBool());
    QVERIFY(!model.hasChildren(conv));
    QCOMPARE(conv.data(CheckpointTreeModel::KeyPathRole).toStringList(),
             QStringList{QStringLiteral("conv1.weight")});
    // num_batches_tracked: a 0-dim int64.
    const QModelIndex tracked = model.index(5, 0, root);
    QCOMPARE(tracked.data().toString(), QStringLiteral("bn1.num_batches_tracked"));
    QCOMPARE(tracked.siblingAtColumn(CheckpointTreeModel::ShapeColumn).data().toString(),
             QStringLiteral("[]"));
    QCOMPARE(tracked.siblingAtColumn(CheckpointTreeModel::DTypeColumn).data().toString(),
             QStringLiteral("int64"));
    // The root's size: every tensor.
    QCOMPARE(root.data(CheckpointTreeModel::BytesRole).toLongLong(),
             ckpt::tensorTotals(file.root).bytes);
    QCOMPARE(model.headerData(CheckpointTreeModel::DeviceColumn, Qt::Horizontal).toString(),
             QStringLiteral("Saved Device"));
}

void TestCheckpointTreeModel::trainingCheckpoint()
{
    const CheckpointFile file = read(QStringLiteral("dp_cuda.pth"));
    CheckpointTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRoot(file.root);
    const QModelIndex root = model.index(0, 0);
    QCOMPARE(model.rowCount(root), 3);
    QCOMPARE(model.index(0, CheckpointTreeModel::ShapeColumn, root).data().toString(),
             QStringLiteral("90"));
    QCOMPARE(model.index(1, CheckpointTreeModel::ShapeColumn, root).data().toString(),
             QStringLiteral("'resnet18'"));
    const QModelIndex state = model.indexForPath({QStringLiteral("state_dict")});
    QVERIFY(state.isValid());
    QCOMPARE(state.data().toString(), QStringLiteral("state_dict"));
    QVERIFY(state.data(CheckpointTreeModel::IsDictRole).toBool());
    const QModelIndex conv = model.index(0, 0, state);
    QCOMPARE(conv.data().toString(), QStringLiteral("module.conv1.weight"));
    // Read with the saved locations kept: the tree shows where it was saved.
    QCOMPARE(conv.siblingAtColumn(CheckpointTreeModel::DeviceColumn).data().toString(),
             QStringLiteral("cuda:0"));
    QCOMPARE(conv.data(CheckpointTreeModel::FullKeyRole).toString(),
             QStringLiteral("state_dict.module.conv1.weight"));
    QCOMPARE(model.indexForPath({QStringLiteral("state_dict"), QStringLiteral("module.fc.bias")})
                 .siblingAtColumn(CheckpointTreeModel::ShapeColumn)
                 .data()
                 .toString(),
             QStringLiteral("[10]"));
    QVERIFY(!model.indexForPath({QStringLiteral("nope")}).isValid());

    const LoadedCheckpoint loaded = loadCheckpointFile(QStringLiteral("dp_cuda.pth"), file, {});
    QCOMPARE(loaded.deviceNotes.size(), 1);
    QVERIFY2(loaded.deviceNotes.constFirst().contains(QStringLiteral("cuda:0")),
             qPrintable(loaded.deviceNotes.constFirst()));
    QVERIFY(loadCheckpointFile(QStringLiteral("dp_cuda.pth"), file, {QStringLiteral("cuda:0")})
                .deviceNotes.isEmpty());
}

void TestCheckpointTreeModel::optimizerState()
{
    const CheckpointFile file = read(QStringLiteral("optim.pt"));
    CheckpointTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRoot(file.root);
    const QModelIndex root = model.index(0, 0);
    QCOMPARE(model.rowCount(root), 2); // state, param_groups
    const QModelIndex state = model.index(0, 0, root);
    QCOMPARE(state.data().toString(), QStringLiteral("state"));
    QCOMPARE(model.rowCount(state), 62); // momentum buffers of resnet18's parameters
    const QModelIndex first = model.index(0, 0, state);
    QCOMPARE(first.data().toString(), QStringLiteral("0")); // int keys
    QVERIFY(first.data(CheckpointTreeModel::KeyPathRole).isNull()); // not reachable by str keys
    const QModelIndex buffer = model.index(0, 0, first);
    QCOMPARE(buffer.data().toString(), QStringLiteral("momentum_buffer"));
    QCOMPARE(buffer.siblingAtColumn(CheckpointTreeModel::ShapeColumn).data().toString(),
             QStringLiteral("[64, 3, 7, 7]"));
    const QModelIndex groups = model.index(1, 0, root);
    QCOMPARE(groups.siblingAtColumn(CheckpointTreeModel::TypeColumn).data().toString(),
             QStringLiteral("list"));
    QCOMPARE(model.index(0, 0, groups).data().toString(), QStringLiteral("[0]"));
}

void TestCheckpointTreeModel::nestedStages()
{
    const CheckpointFile file = read(QStringLiteral("nested.pt"));
    CheckpointTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRoot(file.root);
    const QModelIndex ema = model.indexForPath({QStringLiteral("ema"), QStringLiteral("model")});
    QVERIFY(ema.isValid());
    QCOMPARE(ema.data(CheckpointTreeModel::KeyPathRole).toStringList(),
             (QStringList{QStringLiteral("ema"), QStringLiteral("model")}));
    QCOMPARE(model.rowCount(ema), 7); // Linear weight, bias; BatchNorm1d's five
    QCOMPARE(model.index(0, CheckpointTreeModel::ShapeColumn, ema).data().toString(),
             QStringLiteral("[3, 4]"));
    const QModelIndex sizes
        = model.indexForPath({QStringLiteral("hparams"), QStringLiteral("sizes")});
    QCOMPARE(sizes.siblingAtColumn(CheckpointTreeModel::ShapeColumn).data().toString(),
             QStringLiteral("2 items"));
    QCOMPARE(model.index(1, CheckpointTreeModel::ShapeColumn, sizes).data().toString(),
             QStringLiteral("256"));
    // A model reset shows another file.
    model.setRoot(read(QStringLiteral("stats.pt")).root);
    QCOMPARE(model.rowCount(model.index(0, 0)), 5);
    model.clear();
    QCOMPARE(model.rowCount(), 0);
}

void TestCheckpointTreeModel::totals()
{
    const CheckpointFile file = read(QStringLiteral("resnet18.pt"));
    const ckpt::TensorTotals totals = ckpt::tensorTotals(file.root);
    QCOMPARE(totals.tensors, qint64(122));
    QCOMPARE(totals.elements, qint64(11181642 + 20 + 9600)); // params, counters, BN stats
    QCOMPARE(totals.byDType.value(QStringLiteral("int64")).tensors, qint64(20));
    QCOMPARE(totals.byDType.value(QStringLiteral("float32")).tensors, qint64(102));
    QCOMPARE(totals.byDevice.value(QStringLiteral("cpu")).bytes, totals.bytes);
}

// "Tensor bytes" has one meaning: the bytes of the distinct storages, as torch.save writes them.
// The workspace's totals, the tree's root row and `ifstudio-cli inspect` give the same figure for
// a file whose tensors share storages (views, a transpose, tied weights, a slice of a larger
// storage); the sum over the views is the separate view_bytes.
void TestCheckpointTreeModel::tensorBytesAreDistinctStorages()
{
    const QString path = m_tmp.filePath(QStringLiteral("shared.pt"));
    const ProcessResult oracle = runOracle(QStringLiteral("checkpointsworkspace_oracle.py"),
                                           {QStringLiteral("totals"), path});
    QVERIFY2(oracle.exitCode == 0, oracle.err.constData());
    const QJsonObject torch = QJsonDocument::fromJson(oracle.out).object();
    const qint64 storageBytes = torch[QStringLiteral("storage_bytes")].toInteger();
    const qint64 viewBytes = torch[QStringLiteral("view_bytes")].toInteger();
    QVERIFY(storageBytes != viewBytes); // the file tells the two apart

    const CheckpointFile file = read(QStringLiteral("shared.pt"));
    const ckpt::TensorTotals totals = ckpt::tensorTotals(file.root);
    QCOMPARE(totals.tensors, torch[QStringLiteral("tensors")].toInteger());
    QCOMPARE(totals.elements, torch[QStringLiteral("elements")].toInteger());
    QCOMPARE(totals.bytes, storageBytes);
    QCOMPARE(totals.viewBytes, viewBytes);

    CheckpointTreeModel model;
    model.setRoot(file.root, QStringLiteral("shared.pt"));
    QCOMPARE(model.index(0, 0).data(CheckpointTreeModel::BytesRole).toLongLong(), storageBytes);

    const ProcessResult cli = runCli({QStringLiteral("inspect"), path, QStringLiteral("--json")});
    QVERIFY2(cli.exitCode == 0, cli.err.constData());
    const QJsonObject inspected = QJsonDocument::fromJson(cli.out).object();
    QCOMPARE(inspected[QStringLiteral("tensor_bytes")].toInteger(), storageBytes);
    QCOMPARE(inspected[QStringLiteral("view_bytes")].toInteger(), viewBytes);
    QCOMPARE(inspected[QStringLiteral("parameters")].toInteger(), totals.elements);
}

void TestCheckpointTreeModel::tensorStats()
{
    const CheckpointFile file = read(QStringLiteral("stats.pt"));
    for (const QString &key : {QStringLiteral("f32"), QStringLiteral("f16"), QStringLiteral("bf16"),
                               QStringLiteral("f64")}) {
        const TensorStats stats = computeTensorStats(file.root.value(key).toTensor());
        QVERIFY2(stats.error.isEmpty(), qPrintable(stats.error));
        QCOMPARE(stats.count, qint64(7));
        QCOMPARE(stats.nans, qint64(1));
        QCOMPARE(stats.infs, qint64(1));
        QCOMPARE(stats.zeros, qint64(1));
        QCOMPARE(stats.finite, qint64(5));
        QCOMPARE(stats.min, 0.0);
        QCOMPARE(stats.max, 4.0);
        QCOMPARE(stats.mean, 2.0);
        QVERIFY(std::abs(stats.std - std::sqrt(2.5)) < 1e-12); // torch.std: unbiased
        qint64 total = 0;
        for (qint64 bin : stats.histogram)
            total += bin;
        QCOMPARE(total, qint64(5));
    }
    const TensorStats ints = computeTensorStats(file.root.value(u"i64").toTensor());
    QCOMPARE(ints.min, -3.0);
    QCOMPARE(ints.max, 3.0);
    QCOMPARE(ints.mean, 0.0);
    QCOMPARE(ints.nans, qint64(0));
}

namespace {

/// Visits every row of the model (expanding everything), without recursion; returns the deepest
/// level reached.
int visitAll(CheckpointTreeModel &model)
{
    std::vector<std::pair<QModelIndex, int>> pending{{QModelIndex(), 0}};
    int deepest = 0;
    while (!pending.empty()) {
        const auto [parent, depth] = pending.back();
        pending.pop_back();
        deepest = std::max(deepest, depth);
        for (int row = 0; row < model.rowCount(parent); ++row) {
            for (int column = 0; column < model.columnCount(parent); ++column) {
                const QModelIndex index = model.index(row, column, parent);
                for (int role : {int(Qt::DisplayRole), int(Qt::ToolTipRole),
                                 int(CheckpointTreeModel::BytesRole)}) {
                    (void)index.data(role);
                }
            }
            pending.push_back({model.index(row, 0, parent), depth + 1});
        }
    }
    return deepest;
}

Result<CheckpointFile> readPickle(const QByteArray &body)
{
    return readCheckpoint(QByteArray("\x80\x02", 2) + body);
}

} // namespace

void TestCheckpointTreeModel::hostileValuesShowSafely()
{
    // The pickle of issue 13 that took the app down: the reader refuses it with a message, so the
    // tree never gets it.
    const QByteArray crash = QByteArray::fromBase64(
        "gAJdXV2AAooKbPycBwVLUEb5j49dXWFdYV1hXWFdgAJdXV1dYYACigps/JwHBUtQRvmPj11dYV1hXTJhXWFdgAJdX"
        "V1dYV1hXWFdYV1hXWFiXWJdYV1dYWFhXV1hYl1iYWJiYj4=");
    QVERIFY(!readCheckpoint(crash).ok());

    // Cycles arrive cut (None in their place) and nesting within the reader's bound: the whole
    // tree can be walked.
    // (Its NUL bytes need the length: QByteArray(const char *) would stop at the first.)
    static const char kCycle[] = "cmy.mod\nThing\n)\x81]q\x00h\x00"
                                 "ab.";
    const QByteArray cycle(kCycle, sizeof kCycle - 1);
    QByteArray nested = QByteArray(250, ']') + QByteArray(249, 'a') + '.';
    for (const QByteArray &body : {cycle, nested}) {
        const Result<CheckpointFile> file = readPickle(body);
        QVERIFY2(file.ok(), qPrintable(file.errorMessage()));
        CheckpointTreeModel model;
        QAbstractItemModelTester tester(&model,
                                        QAbstractItemModelTester::FailureReportingMode::QtTest);
        model.setRoot(file->root, QStringLiteral("hostile"));
        QVERIFY(visitAll(model) >= 2);
    }
    CheckpointTreeModel model;
    model.setRoot(readPickle(nested)->root);
    QCOMPARE(visitAll(model), 250); // one level per list, the outermost in the root row
}

void TestCheckpointTreeModel::onDemandFileShowsWithoutItsData()
{
    // A zip bomb (4 × 16 MiB of zeros, about 64 KiB on disk) read as the workspace reads: the
    // tree, its sizes and totals come from the structure, statistics stream.
    const QString bomb = m_tmp.filePath(QStringLiteral("bomb.pt"));
    const ProcessResult made = runProcess(oraclePython(),
                                          {toolPath(QStringLiteral("make_zip_bomb.py")), bomb,
                                           QStringLiteral("4"), QStringLiteral("16")});
    QVERIFY2(made.exitCode == 0, made.err.constData());
    ReadOptions options;
    options.tensorData = ReadOptions::TensorData::OnDemand;
    options.maxInflatedBytes = 1; // nothing may be inflated into memory
    const Result<CheckpointFile> file = readCheckpoint(bomb, options);
    QVERIFY2(file.ok(), qPrintable(file.errorMessage()));
    CheckpointTreeModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setRoot(file->root, QStringLiteral("bomb.pt"));
    QCOMPARE(visitAll(model), 2);
    const QModelIndex root = model.index(0, CheckpointTreeModel::SizeColumn);
    QCOMPARE(root.data(CheckpointTreeModel::BytesRole).toLongLong(), qint64(64) << 20);
    QCOMPARE(ckpt::tensorTotals(file->root).bytes, qint64(64) << 20);
    const TensorStats stats = computeTensorStats(file->root.value(u"t3").toTensor());
    QVERIFY2(stats.error.isEmpty(), qPrintable(stats.error));
    QCOMPARE(stats.zeros, qint64(4) << 20);
    // Loading it whole would take from the budget, which allows nothing here.
    QVERIFY(!file->root.value(u"t3").toTensor().contiguousBytes().ok());
}

QTEST_GUILESS_MAIN(TestCheckpointTreeModel)
#include "tst_checkpointtreemodel.moc"
