// The step list of a pipeline: a well-behaved item model (QAbstractItemModelTester), edits that
// say so, drag and drop as moves, and the code view's text in and out, disabled steps included.
#include "transforms/pipelinemodel.h"
#include "transforms/stepform.h"

#include <QAbstractItemModelTester>
#include <QMimeData>
#include <QSignalSpy>
#include <QTest>

using namespace ifs;

Q_DECLARE_METATYPE(ifs::PipelineItems)

namespace {

TransformStep parsedStep(const QString &source)
{
    const Result<TransformPipeline> parsed = parseTransforms(source);
    if (!parsed || parsed->steps.size() != 1)
        qFatal("bad step in test: %s", qPrintable(source));
    return parsed->steps.constFirst();
}

PipelineItems sampleItems()
{
    return {
        {parsedStep(QStringLiteral("RandomResizedCrop(224, scale=(0.5, 1.0))")), true},
        {parsedStep(QStringLiteral("RandomRotation(30)")), false},
        {parsedStep(QStringLiteral("RandomHorizontalFlip()")), true},
        {parsedStep(QStringLiteral("ToTensor()")), true},
        {parsedStep(QStringLiteral("Normalize((0.5,), (0.25,))")), true},
    };
}

QStringList names(const PipelineModel &model)
{
    QStringList out;
    for (int row = 0; row < model.rowCount(); ++row)
        out.append(model.index(row).data(PipelineModel::NameRole).toString());
    return out;
}

} // namespace

class TestPipelineModel : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void modelIsWellBehaved();
    void insertRemoveMoveToggle();
    void moveRowsSemantics_data();
    void moveRowsSemantics();
    void dragAndDropMoves();
    void rowsShowFindingsAndProblems();
    void codeRoundTrip_data();
    void codeRoundTrip();
    void canonicalCode();
    void disabledStepsInUserCode();
    void commentsThatAreNotStepsAreIgnored();
    void parseErrorsPassThrough();
    void enabledPipelineKeepsDisabledInPlace();
    void stepArguments();
    void literals_data();
    void literals();
};

void TestPipelineModel::modelIsWellBehaved()
{
    PipelineModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setItems(sampleItems());
    model.insertStep(2, parsedStep(QStringLiteral("ColorJitter(brightness=0.2)")));
    model.moveStep(0, 4);
    model.moveStep(4, 1);
    model.setStepEnabled(1, false);
    model.setRowProblems({QStringLiteral("bad"), {}, {}, {}, {}, {}});
    model.setRowNotes({{2, 1, QStringLiteral("careful")}});
    model.removeStep(3);
    model.setItems({});
    model.insertStep(0, parsedStep(QStringLiteral("ToTensor()")));
    QCOMPARE(model.rowCount(), 1);
}

void TestPipelineModel::insertRemoveMoveToggle()
{
    PipelineModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy edited(&model, &PipelineModel::itemsEdited);
    model.setItems(sampleItems());
    QCOMPARE(edited.count(), 0); // setItems is not an edit
    QCOMPARE(model.rowCount(), 5);
    QCOMPARE(model.pipeline().steps.size(), 4); // RandomRotation is disabled

    model.insertStep(0, parsedStep(QStringLiteral("Resize(256)")));
    QCOMPARE(edited.count(), 1);
    QCOMPARE(names(model).constFirst(), QStringLiteral("Resize"));
    QCOMPARE(model.index(0).data(Qt::DisplayRole).toString(), QStringLiteral("Resize(256)"));
    QCOMPARE(model.index(0).data(PipelineModel::ArgumentsRole).toString(), QStringLiteral("256"));

    QVERIFY(model.moveStep(0, 2));
    QCOMPARE(edited.count(), 2);
    QCOMPARE(names(model),
             (QStringList{QStringLiteral("RandomResizedCrop"), QStringLiteral("RandomRotation"),
                          QStringLiteral("Resize"), QStringLiteral("RandomHorizontalFlip"),
                          QStringLiteral("ToTensor"), QStringLiteral("Normalize")}));
    QVERIFY(!model.moveStep(0, 0));
    QVERIFY(!model.moveStep(0, 6));
    QCOMPARE(edited.count(), 2);

    // Toggle through the check box role, as the view does.
    QCOMPARE(model.index(1).data(Qt::CheckStateRole).toInt(), int(Qt::Unchecked));
    QVERIFY(model.setData(model.index(1), Qt::Checked, Qt::CheckStateRole));
    QCOMPARE(edited.count(), 3);
    QVERIFY(model.item(1).enabled);
    QCOMPARE(model.pipeline().steps.size(), 6);
    QVERIFY(model.flags(model.index(1)) & Qt::ItemIsUserCheckable);
    QVERIFY(model.flags(model.index(1)) & Qt::ItemIsDragEnabled);
    QVERIFY(!(model.flags(model.index(1)) & Qt::ItemIsDropEnabled));
    QVERIFY(model.flags(QModelIndex()) & Qt::ItemIsDropEnabled);
    model.setStepEnabled(1, true); // no change, no signal
    QCOMPARE(edited.count(), 3);

    model.setStep(2, parsedStep(QStringLiteral("Resize((64, 64))")));
    QCOMPARE(edited.count(), 4);
    QCOMPARE(model.index(2).data(PipelineModel::ArgumentsRole).toString(),
             QStringLiteral("(64, 64)"));

    model.removeStep(0);
    QCOMPARE(edited.count(), 5);
    QCOMPARE(model.rowCount(), 5);
    QCOMPARE(names(model).constFirst(), QStringLiteral("RandomRotation"));
    QCOMPARE(model.rowOfEnabledStep(0), 0);
    model.setStepEnabled(0, false);
    QCOMPARE(model.rowOfEnabledStep(0), 1);
    QCOMPARE(model.rowOfEnabledStep(3), 4);
    QCOMPARE(model.rowOfEnabledStep(4), -1);
}

void TestPipelineModel::moveRowsSemantics_data()
{
    QTest::addColumn<int>("from");
    QTest::addColumn<int>("before");
    QTest::addColumn<QString>("order");
    QTest::newRow("first to end") << 0 << 4 << QStringLiteral("BCDA");
    QTest::newRow("last to front") << 3 << 0 << QStringLiteral("DABC");
    QTest::newRow("down one") << 1 << 3 << QStringLiteral("ACBD");
    QTest::newRow("up one") << 2 << 1 << QStringLiteral("ACBD");
}

void TestPipelineModel::moveRowsSemantics()
{
    QFETCH(int, from);
    QFETCH(int, before);
    QFETCH(QString, order);
    // A..D as Pad(1)..Pad(4).
    PipelineItems items;
    for (int i = 1; i <= 4; ++i)
        items.append({parsedStep(QStringLiteral("Pad(%1)").arg(i)), true});
    PipelineModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setItems(items);
    QSignalSpy moved(&model, &QAbstractItemModel::rowsMoved);
    QVERIFY(model.moveRows({}, from, 1, {}, before));
    QCOMPARE(moved.count(), 1);
    QString got;
    for (int row = 0; row < 4; ++row)
        got += QChar(u'A' + model.index(row).data(PipelineModel::ArgumentsRole).toInt() - 1);
    QCOMPARE(got, order);
    // A move onto itself is refused.
    QVERIFY(!model.moveRows({}, 1, 1, {}, 1));
    QVERIFY(!model.moveRows({}, 1, 1, {}, 2));
}

void TestPipelineModel::dragAndDropMoves()
{
    PipelineModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setItems(sampleItems());
    QSignalSpy inserted(&model, &QAbstractItemModel::rowsInserted);
    QSignalSpy removed(&model, &QAbstractItemModel::rowsRemoved);
    QSignalSpy edited(&model, &PipelineModel::itemsEdited);

    std::unique_ptr<QMimeData> mime(model.mimeData({model.index(3)})); // ToTensor
    QVERIFY(mime->hasFormat(model.mimeTypes().constFirst()));
    QVERIFY(mime->text().contains(QStringLiteral("transforms.ToTensor(),")));
    QVERIFY(model.canDropMimeData(mime.get(), Qt::MoveAction, 0, 0, {}));
    QVERIFY(!model.canDropMimeData(mime.get(), Qt::MoveAction, 0, 0, model.index(1)));
    // Dropped before the first row: a move, never insert + remove.
    QVERIFY(model.dropMimeData(mime.get(), Qt::MoveAction, 0, 0, {}));
    QCOMPARE(names(model).constFirst(), QStringLiteral("ToTensor"));
    QCOMPARE(model.rowCount(), 5);
    QCOMPARE(inserted.count(), 0);
    QCOMPARE(removed.count(), 0);
    QCOMPARE(edited.count(), 1);
    // Dropped at the end (row -1).
    mime.reset(model.mimeData({model.index(0)}));
    QVERIFY(model.dropMimeData(mime.get(), Qt::MoveAction, -1, -1, {}));
    QCOMPARE(names(model).constLast(), QStringLiteral("ToTensor"));
    // Dropped where it is: nothing happens.
    mime.reset(model.mimeData({model.index(4)}));
    QVERIFY(!model.dropMimeData(mime.get(), Qt::MoveAction, -1, -1, {}));
    QCOMPARE(edited.count(), 2);
}

void TestPipelineModel::rowsShowFindingsAndProblems()
{
    PipelineModel model;
    model.setItems(sampleItems());
    QCOMPARE(model.index(0).data(PipelineModel::SeverityRole).toInt(), -1);
    QVERIFY(model.index(0).data(Qt::DecorationRole).isNull());
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    model.setRowNotes(
        {{0, 1, QStringLiteral("scale looks reversed")}, {0, 0, QStringLiteral("a note")}});
    QCOMPARE(changed.count(), 1);
    QCOMPARE(model.index(0).data(PipelineModel::SeverityRole).toInt(), 1);
    QVERIFY(!model.index(0).data(Qt::DecorationRole).isNull());
    QVERIFY(model.index(0).data(Qt::ToolTipRole).toString().contains(QStringLiteral("reversed")));
    model.setRowProblems({{}, {}, {}, {}, QStringLiteral("mean must be a sequence")});
    QCOMPARE(model.index(4).data(PipelineModel::SeverityRole).toInt(), 2);
    QCOMPARE(model.index(4).data(PipelineModel::ProblemRole).toString(),
             QStringLiteral("mean must be a sequence"));
    QVERIFY(model.index(1).data(PipelineModel::RandomRole).toBool());
    QVERIFY(!model.index(3).data(PipelineModel::RandomRole).toBool());
    QVERIFY(model.index(1).data(Qt::ToolTipRole).toString().contains(QStringLiteral("Disabled")));
}

void TestPipelineModel::codeRoundTrip_data()
{
    QTest::addColumn<PipelineItems>("items");
    const PipelineItems sample = sampleItems();
    QTest::newRow("mixed") << sample;
    QTest::newRow("empty") << PipelineItems{};
    PipelineItems first = sample;
    first[0].enabled = false;
    QTest::newRow("first disabled") << first;
    PipelineItems last = sample;
    last[4].enabled = false;
    QTest::newRow("last disabled") << last;
    PipelineItems all = sample;
    for (PipelineItem &item : all)
        item.enabled = false;
    QTest::newRow("all disabled") << all;
    PipelineItems twins{{parsedStep(QStringLiteral("RandomRotation(30)")), true},
                        {parsedStep(QStringLiteral("RandomRotation(30)")), false},
                        {parsedStep(QStringLiteral("RandomRotation(30)")), true}};
    QTest::newRow("identical neighbours") << twins;
    PipelineItems strings{{parsedStep(QStringLiteral("Pad(4, padding_mode='reflect')")), false},
                          {parsedStep(QStringLiteral("RandomErasing(value='random')")), true}};
    QTest::newRow("strings") << strings;
}

void TestPipelineModel::codeRoundTrip()
{
    QFETCH(PipelineItems, items);
    const QString code = pipelineItemsToSource(items);
    const Result<PipelineItems> back = pipelineItemsFromSource(code);
    QVERIFY2(back.ok(), qPrintable(back.errorMessage() + u'\n' + code));
    QCOMPARE(back.value(), items);
    // The enabled steps are exactly what the core parser reads: Python sees the same pipeline.
    const Result<TransformPipeline> plain = parseTransforms(code);
    QVERIFY(plain.ok());
    QCOMPARE(plain.value(), enabledPipeline(items));
}

void TestPipelineModel::canonicalCode()
{
    const QString code = pipelineItemsToSource(sampleItems());
    QCOMPARE(code,
             QStringLiteral("transforms.Compose([\n"
                            "    transforms.RandomResizedCrop(224, scale=(0.5, 1.0)),\n"
                            "    # transforms.RandomRotation(30),\n"
                            "    transforms.RandomHorizontalFlip(),\n"
                            "    transforms.ToTensor(),\n"
                            "    transforms.Normalize((0.5,), (0.25,)),\n"
                            "])"));
    // Without disabled steps it is the core printer's text.
    PipelineItems enabled = sampleItems();
    enabled.removeAt(1);
    QCOMPARE(pipelineItemsToSource(enabled), toTorchvisionSource(enabledPipeline(enabled)));
    QCOMPARE(pipelineItemsToSource({}), QStringLiteral("transforms.Compose([])"));
}

void TestPipelineModel::disabledStepsInUserCode()
{
    // As people write it: T. prefix, two steps on a line, a trailing comment, a disabled step
    // after a step without a comma, and defaults spelled out.
    const QString code = QStringLiteral("T.Compose([\n"
                                        "  T.Resize(256), T.CenterCrop(224),   # the usual\n"
                                        "  #T.RandomRotation(degrees=10)\n"
                                        "  T.ToTensor()\n"
                                        "  # T.RandomErasing(p=0.5),  # later\n"
                                        "])");
    const Result<PipelineItems> items = pipelineItemsFromSource(code);
    QVERIFY2(items.ok(), qPrintable(items.errorMessage()));
    QCOMPARE(items->size(), 5);
    QStringList got;
    for (const PipelineItem &item : items.value())
        got.append((item.enabled ? QString() : QStringLiteral("-")) + item.step.name);
    QCOMPARE(got,
             (QStringList{QStringLiteral("Resize"), QStringLiteral("CenterCrop"),
                          QStringLiteral("-RandomRotation"), QStringLiteral("ToTensor"),
                          QStringLiteral("-RandomErasing")}));
    // Normalized like every parsed step: the default p=0.5 is dropped.
    QVERIFY(items->at(4).step.args.isEmpty());
    QCOMPARE(items->at(2).step.args.constFirst().value, TransformValue::integer(10));
}

void TestPipelineModel::commentsThatAreNotStepsAreIgnored()
{
    const QString code
        = QStringLiteral("# transforms.Resize(1)  (before the pipeline: not part of it)\n"
                         "transforms.Compose([\n"
                         "    # Resize first, then crop\n"
                         "    transforms.Resize(256),\n"
                         "    # transforms.Bogus(3),\n"
                         "    # [transforms.ToTensor()],\n"
                         "    transforms.ToTensor(),\n"
                         "])");
    const Result<PipelineItems> items = pipelineItemsFromSource(code);
    QVERIFY2(items.ok(), qPrintable(items.errorMessage()));
    QCOMPARE(items->size(), 2);
    QVERIFY(items->at(0).enabled && items->at(1).enabled);
}

void TestPipelineModel::parseErrorsPassThrough()
{
    const Result<PipelineItems> items = pipelineItemsFromSource(QStringLiteral(
        "transforms.Compose([\n    transforms.Resize(256),\n    transforms.Foo(),\n])"));
    QVERIFY(!items.ok());
    QVERIFY2(items.errorMessage().contains(QStringLiteral("line 3, column 16")),
             qPrintable(items.errorMessage()));
    QVERIFY(items.errorMessage().contains(u'^'));
}

void TestPipelineModel::enabledPipelineKeepsDisabledInPlace()
{
    const PipelineItems items = sampleItems(); // RRC, -Rot, Flip, ToTensor, Normalize
    TransformPipeline fixed = enabledPipeline(items);
    fixed.steps.insert(0, parsedStep(QStringLiteral("Resize(300)")));
    const PipelineItems out = withEnabledPipeline(items, fixed);
    QStringList got;
    for (const PipelineItem &item : out)
        got.append((item.enabled ? QString() : QStringLiteral("-")) + item.step.name);
    // The disabled rotation still follows the first enabled step it followed before (RRC's
    // position is now taken by Resize; it follows one enabled step).
    QCOMPARE(
        got,
        (QStringList{QStringLiteral("Resize"), QStringLiteral("-RandomRotation"),
                     QStringLiteral("RandomResizedCrop"), QStringLiteral("RandomHorizontalFlip"),
                     QStringLiteral("ToTensor"), QStringLiteral("Normalize")}));
    // Fewer steps: leftovers go to the end.
    const PipelineItems shorter = withEnabledPipeline(items, TransformPipeline{});
    QCOMPARE(shorter.size(), 1);
    QVERIFY(!shorter.constFirst().enabled);
}

void TestPipelineModel::stepArguments()
{
    QCOMPARE(stepArgumentsText(parsedStep(QStringLiteral("ToTensor()"))), QString());
    QCOMPARE(stepArgumentsText(parsedStep(
                 QStringLiteral("Resize(size=224, interpolation=InterpolationMode.BICUBIC)"))),
             QStringLiteral("224, interpolation=transforms.InterpolationMode.BICUBIC"));
    QVERIFY(!transformDescription(QStringLiteral("RandomResizedCrop")).isEmpty());
    for (const TransformSignature &signature : knownTransforms())
        QVERIFY2(!transformDescription(signature.name).isEmpty(), qPrintable(signature.name));
}

void TestPipelineModel::literals_data()
{
    QTest::addColumn<QString>("text");
    QTest::addColumn<QString>("python"); // toPythonLiteral of the result; empty: an error
    QTest::addColumn<QString>("error");
    QTest::newRow("int") << QStringLiteral("224") << QStringLiteral("224") << QString();
    QTest::newRow("tuple") << QStringLiteral("(0.5, 1.0)") << QStringLiteral("(0.5, 1.0)")
                           << QString();
    QTest::newRow("bare tuple") << QStringLiteral("32, 32") << QStringLiteral("(32, 32)")
                                << QString();
    QTest::newRow("one-tuple") << QStringLiteral("(0.5,)") << QStringLiteral("(0.5,)") << QString();
    QTest::newRow("none") << QStringLiteral("None") << QStringLiteral("None") << QString();
    QTest::newRow("enum") << QStringLiteral("InterpolationMode.BICUBIC")
                          << QStringLiteral("transforms.InterpolationMode.BICUBIC") << QString();
    QTest::newRow("string") << QStringLiteral("'random'") << QStringLiteral("'random'")
                            << QString();
    QTest::newRow("fraction") << QStringLiteral("3/4") << QStringLiteral("0.75") << QString();
    QTest::newRow("open paren") << QStringLiteral("(1, 2") << QString()
                                << QStringLiteral("Expected");
    QTest::newRow("name") << QStringLiteral("foo") << QString()
                          << QStringLiteral("Expected a value but found “foo” at column 1");
    QTest::newRow("keyword injection")
        << QStringLiteral("1), fill=(3") << QString() << QStringLiteral("one Python value");
}

void TestPipelineModel::literals()
{
    QFETCH(QString, text);
    QFETCH(QString, python);
    QFETCH(QString, error);
    const Result<TransformValue> value = parsePythonLiteral(text);
    if (python.isEmpty()) {
        QVERIFY(!value.ok());
        QVERIFY2(value.errorMessage().contains(error), qPrintable(value.errorMessage()));
        QVERIFY(!value.errorMessage().contains(QStringLiteral("Pad")));
        return;
    }
    QVERIFY2(value.ok(), qPrintable(value.errorMessage()));
    QCOMPARE(toPythonLiteral(value.value()), python);
}

QTEST_MAIN(TestPipelineModel)
#include "tst_pipelinemodel.moc"
