// The health report model under QAbstractItemModelTester with a hand-made report, and the health
// panel end to end on a real hostile corpus: check, tick the errors, quarantine, undo, cancel.
#include "dataset/imagefolder.h"
#include "dataset/quarantine.h"
#include "datasets/duplicatepairview.h"
#include "datasets/healthfiltermodel.h"
#include "datasets/healthpanel.h"
#include "datasets/healthreportmodel.h"
#include "testutil.h"

#include <QAbstractItemModelTester>
#include <QAction>
#include <QApplication>
#include <QBuffer>
#include <QDir>
#include <QDirIterator>
#include <QFile>
#include <QImage>
#include <QJsonArray>
#include <QJsonDocument>
#include <QJsonObject>
#include <QLabel>
#include <QMessageBox>
#include <QPointer>
#include <QRandomGenerator>
#include <QSemaphore>
#include <QSignalSpy>
#include <QStackedWidget>
#include <QTableView>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>

#include <atomic>
#include <memory>

using namespace ifs;
using namespace ifs::test;
using namespace Qt::StringLiterals;

using Kind = HealthFinding::Kind;
using Severity = HealthFinding::Severity;

namespace {

constexpr int kCheckTimeoutMs = 60000;

HealthFinding makeFinding(Kind kind, Severity severity, const QString &split,
                          const QString &relativePath, const QString &duplicateOf = {})
{
    HealthFinding finding;
    finding.kind = kind;
    finding.severity = severity;
    finding.split = split;
    finding.relativePath = relativePath;
    finding.absolutePath = QStringLiteral("/data/set/") + split + u'/' + relativePath;
    finding.message = QStringLiteral("“%1” has a problem.").arg(relativePath);
    finding.duplicateOf = duplicateOf;
    return finding;
}

/// Six findings on five files; dog/4.png has two (a file is ticked and moved as one).
HealthReport handMadeReport()
{
    HealthReport report;
    report.findings = {
        makeFinding(Kind::Truncated, Severity::Error, QStringLiteral("train"),
                    QStringLiteral("cat/1.jpg")),
        makeFinding(Kind::Duplicate, Severity::Warning, QStringLiteral("val"),
                    QStringLiteral("cat/1.jpg"), QStringLiteral("train/cat/1.jpg")),
        makeFinding(Kind::WrongExtension, Severity::Info, QStringLiteral("train"),
                    QStringLiteral("dog/2.png")),
        makeFinding(Kind::ZeroByte, Severity::Error, QStringLiteral("train"),
                    QStringLiteral("dog/3.jpg")),
        makeFinding(Kind::UnusualMode, Severity::Warning, QStringLiteral("train"),
                    QStringLiteral("dog/4.png")),
        makeFinding(Kind::TinyDimensions, Severity::Warning, QStringLiteral("train"),
                    QStringLiteral("dog/4.png")),
    };
    report.filesChecked = 10;
    return report;
}

QByteArray encode(const QImage &image, const char *format, int quality = -1)
{
    QByteArray bytes;
    QBuffer buffer(&bytes);
    buffer.open(QIODevice::WriteOnly);
    image.save(&buffer, format, quality);
    return bytes;
}

/// A colourful image with noise, so that JPEG data is large enough to cut in half meaningfully.
QImage testImage(int width, int height, quint32 seed)
{
    QImage image(width, height, QImage::Format_RGB888);
    QRandomGenerator rng(seed);
    for (int y = 0; y < height; ++y) {
        for (int x = 0; x < width; ++x) {
            const int noise = int(rng.bounded(64));
            image.setPixel(x, y,
                           qRgb((x * 255 / width + noise) % 256, (y * 255 / height + noise) % 256,
                                (x + y + noise) % 256));
        }
    }
    return image;
}

QByteArray readAll(const QString &path)
{
    QFile file(path);
    return file.open(QIODevice::ReadOnly) ? file.readAll() : QByteArray();
}

IndexPtr scan(const QString &root)
{
    Result<ImageFolderIndex> index = scanImageFolder(root);
    if (!index) {
        qWarning() << index.errorMessage();
        return {};
    }
    return std::make_shared<const ImageFolderIndex>(std::move(index).value());
}

/// Counts terminal signals of a panel.
struct TerminalSpies
{
    explicit TerminalSpies(HealthPanel *panel)
        : finished(panel, &HealthPanel::finished)
        , cancelled(panel, &HealthPanel::cancelled)
        , failed(panel, &HealthPanel::failed)
    { }
    qsizetype total() const { return finished.count() + cancelled.count() + failed.count(); }
    QSignalSpy finished;
    QSignalSpy cancelled;
    QSignalSpy failed;
};

/// Waits until the panel has emitted `count` terminal signals in all.
bool waitForTerminal(const TerminalSpies &spies, int count = 1)
{
    return QTest::qWaitFor([&] { return spies.total() >= count; }, kCheckTimeoutMs);
}

/// Runs what is already posted. A terminal signal comes after the check has returned, so
/// whatever else the run could post is here after this: "nothing else follows" holds now.
void processPosted()
{
    QCoreApplication::sendPostedEvents();
    QCoreApplication::processEvents();
}

/// For looking at the panel by eye: IFS_SCREENSHOT_DIR=/tmp/shots ./tst_healthmodel
void saveScreenshot(QWidget *widget, const QString &name)
{
    const QString dir = qEnvironmentVariable("IFS_SCREENSHOT_DIR");
    if (dir.isEmpty())
        return;
    QDir().mkpath(dir);
    widget->show();
    if (!QTest::qWaitForWindowExposed(widget))
        return;
    QTest::qWait(50); // let posted layout requests run
    widget->grab().save(dir + u'/' + name + u".png");
}

} // namespace

class TestHealthModel : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void modelBasics();
    void kindNames_data();
    void kindNames();
    void sortsBySeverity();
    void filters();
    void checkStates();
    void quarantinedMarking();

    void panelEmptyState();
    void panelEndToEnd();
    void panelCleanDataset();
    void panelNearDuplicatePair();
    void panelCancel();
    void panelDatasetChangeCancels();
    void panelDestroyedWhileRunning();

private:
    /// A corpus of `count` valid JPEGs in two classes; returns its root.
    QString writeValidCorpus(const QString &root, int count);

    QTemporaryDir m_dir;
};

void TestHealthModel::initTestCase()
{
    QVERIFY(m_dir.isValid());
}

void TestHealthModel::modelBasics()
{
    HealthReportModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(model.columnCount(), int(HealthReportModel::ColumnCount));

    model.setReport(handMadeReport());
    QCOMPARE(model.rowCount(), 6);
    QCOMPARE(model.findingCount(), 6);
    QCOMPARE(model.finding(3).kind, Kind::ZeroByte);

    auto text = [&](int row, int column) {
        return model.index(row, column).data().toString();
    };
    QCOMPARE(text(0, HealthReportModel::SeverityColumn), QStringLiteral("Error"));
    QCOMPARE(text(0, HealthReportModel::ProblemColumn), QStringLiteral("Truncated"));
    QCOMPARE(text(0, HealthReportModel::SplitColumn), QStringLiteral("train"));
    QCOMPARE(text(0, HealthReportModel::FileColumn), QStringLiteral("cat/1.jpg"));
    QCOMPARE(text(0, HealthReportModel::DetailsColumn),
             QStringLiteral("“cat/1.jpg” has a problem."));
    QCOMPARE(text(1, HealthReportModel::DetailsColumn),
             QStringLiteral("Same bytes as train/cat/1.jpg"));
    QCOMPARE(text(3, HealthReportModel::ProblemColumn), QStringLiteral("Empty file"));

    const QModelIndex first = model.index(0, 0);
    QCOMPARE(first.data(HealthReportModel::KindRole).toInt(), int(Kind::Truncated));
    QCOMPARE(first.data(HealthReportModel::SeverityRole).toInt(), int(Severity::Error));
    QCOMPARE(first.data(HealthReportModel::AbsolutePathRole).toString(),
             QStringLiteral("/data/set/train/cat/1.jpg"));
    QCOMPARE(first.data(HealthReportModel::QuarantinedRole).toBool(), false);
    QCOMPARE(model.index(0, HealthReportModel::FileColumn).data(Qt::ToolTipRole).toString(),
             QStringLiteral("/data/set/train/cat/1.jpg"));

    // Every severity has an icon, themed or painted.
    for (int row : {0, 1, 2}) {
        const QIcon icon = model.index(row, 0).data(Qt::DecorationRole).value<QIcon>();
        QVERIFY(!icon.isNull());
        QVERIFY(!icon.pixmap(16, 16).isNull());
    }
    QVERIFY(!model.index(0, 1).data(Qt::DecorationRole).isValid());
    QCOMPARE(model.headerData(HealthReportModel::FileColumn, Qt::Horizontal).toString(),
             QStringLiteral("File"));

    QCOMPARE(model.failingFileCount(), 2);
    model.clear();
    QCOMPARE(model.rowCount(), 0);
    QCOMPARE(model.failingFileCount(), 0);
}

void TestHealthModel::kindNames_data()
{
    QTest::addColumn<Kind>("kind");
    QTest::addColumn<QString>("name");
    QTest::addColumn<QString>("key");
    QTest::newRow("truncated") << Kind::Truncated << u"Truncated"_s << u"truncated"_s;
    QTest::newRow("unreadable") << Kind::Unreadable << u"Unreadable"_s << u"unreadable"_s;
    QTest::newRow("empty") << Kind::ZeroByte << u"Empty file"_s << u"zero_byte"_s;
    QTest::newRow("huge") << Kind::HugeDimensions << u"Huge"_s << u"huge_dimensions"_s;
    QTest::newRow("tiny") << Kind::TinyDimensions << u"Tiny"_s << u"tiny_dimensions"_s;
    QTest::newRow("mode") << Kind::UnusualMode << u"Unusual mode"_s << u"unusual_mode"_s;
    QTest::newRow("extension") << Kind::WrongExtension << u"Wrong extension"_s
                               << u"wrong_extension"_s;
    QTest::newRow("duplicate") << Kind::Duplicate << u"Duplicate"_s << u"duplicate"_s;
}

void TestHealthModel::kindNames()
{
    QFETCH(Kind, kind);
    QFETCH(QString, name);
    QFETCH(QString, key);
    QCOMPARE(HealthReportModel::kindName(kind), name);
    QCOMPARE(HealthReportModel::kindKey(kind), key);
}

void TestHealthModel::sortsBySeverity()
{
    HealthReportModel model;
    HealthFilterModel proxy;
    proxy.setSourceModel(&model);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setReport(handMadeReport());

    proxy.sort(HealthReportModel::SeverityColumn, Qt::DescendingOrder);
    QList<int> severities;
    QStringList files;
    for (int row = 0; row < proxy.rowCount(); ++row) {
        severities.append(proxy.index(row, 0).data(HealthReportModel::SeverityRole).toInt());
        files.append(proxy.index(row, HealthReportModel::FileColumn).data().toString());
    }
    const int error = int(Severity::Error);
    const int warning = int(Severity::Warning);
    const int info = int(Severity::Info);
    QCOMPARE(severities, (QList<int>{error, error, warning, warning, warning, info}));
    // Stable within a severity: report order.
    QCOMPARE(files.first(), QStringLiteral("cat/1.jpg"));
    QCOMPARE(files.at(1), QStringLiteral("dog/3.jpg"));

    proxy.sort(HealthReportModel::SeverityColumn, Qt::AscendingOrder);
    QCOMPARE(proxy.index(0, 0).data(HealthReportModel::SeverityRole).toInt(), info);

    proxy.sort(HealthReportModel::ProblemColumn, Qt::AscendingOrder);
    QCOMPARE(proxy.index(0, HealthReportModel::ProblemColumn).data().toString(),
             QStringLiteral("Duplicate"));
    QCOMPARE(proxy.index(5, HealthReportModel::ProblemColumn).data().toString(),
             QStringLiteral("Wrong extension"));

    proxy.sort(HealthReportModel::SplitColumn, Qt::DescendingOrder);
    QCOMPARE(proxy.index(0, HealthReportModel::SplitColumn).data().toString(),
             QStringLiteral("val"));
}

void TestHealthModel::filters()
{
    HealthReportModel model;
    HealthFilterModel proxy;
    proxy.setSourceModel(&model);
    QAbstractItemModelTester tester(&proxy, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setReport(handMadeReport());
    QCOMPARE(proxy.rowCount(), 6);

    proxy.setSeverityFilter(Severity::Error);
    QCOMPARE(proxy.rowCount(), 2);
    for (int row = 0; row < proxy.rowCount(); ++row)
        QCOMPARE(proxy.index(row, 0).data(HealthReportModel::SeverityRole).toInt(),
                 int(Severity::Error));

    proxy.setSeverityFilter(Severity::Warning);
    QCOMPARE(proxy.rowCount(), 3);

    proxy.setSeverityFilter(std::nullopt);
    proxy.setKindFilter(Kind::Duplicate);
    QCOMPARE(proxy.rowCount(), 1);
    QCOMPARE(proxy.index(0, HealthReportModel::SplitColumn).data().toString(),
             QStringLiteral("val"));

    // Both at once: a Duplicate is never an Error here.
    proxy.setSeverityFilter(Severity::Error);
    QCOMPARE(proxy.rowCount(), 0);

    proxy.setSeverityFilter(std::nullopt);
    proxy.setKindFilter(std::nullopt);
    QCOMPARE(proxy.rowCount(), 6);

    // A new report keeps the filter.
    proxy.setKindFilter(Kind::ZeroByte);
    model.setReport(handMadeReport());
    QCOMPARE(proxy.rowCount(), 1);
}

void TestHealthModel::checkStates()
{
    HealthReportModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QSignalSpy checkedChanged(&model, &HealthReportModel::checkedChanged);
    model.setReport(handMadeReport());

    QVERIFY(model.flags(model.index(0, 0)).testFlag(Qt::ItemIsUserCheckable));
    QVERIFY(!model.flags(model.index(0, 1)).testFlag(Qt::ItemIsUserCheckable));
    QCOMPARE(model.index(0, 0).data(Qt::CheckStateRole).toInt(), int(Qt::Unchecked));
    QVERIFY(!model.index(0, 1).data(Qt::CheckStateRole).isValid());
    QVERIFY(model.checkedPaths().isEmpty());

    // Ticking one finding of dog/4.png ticks the file, so both of its rows.
    QSignalSpy dataChanged(&model, &QAbstractItemModel::dataChanged);
    QVERIFY(model.setData(model.index(4, 0), Qt::Checked, Qt::CheckStateRole));
    QCOMPARE(checkedChanged.count(), 1);
    QVERIFY(dataChanged.count() >= 1);
    QCOMPARE(model.index(4, 0).data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
    QCOMPARE(model.index(5, 0).data(Qt::CheckStateRole).toInt(), int(Qt::Checked));
    QCOMPARE(model.checkedPaths(), QStringList{QStringLiteral("/data/set/train/dog/4.png")});
    QVERIFY(!model.setData(model.index(4, 1), Qt::Checked, Qt::CheckStateRole));

    // Errors only: the truncated and the empty file, dog/4.png unticked.
    QCOMPARE(model.checkAllErrors(), 2);
    QCOMPARE(model.checkedPaths(),
             (QStringList{QStringLiteral("/data/set/train/cat/1.jpg"),
                          QStringLiteral("/data/set/train/dog/3.jpg")}));
    QCOMPARE(model.index(5, 0).data(Qt::CheckStateRole).toInt(), int(Qt::Unchecked));
    QCOMPARE(checkedChanged.count(), 2);
    QCOMPARE(model.checkAllErrors(), 2); // no change, no signal
    QCOMPARE(checkedChanged.count(), 2);

    model.setChecked(0, false);
    QCOMPARE(model.checkedCount(), 1);
    model.uncheckAll();
    QVERIFY(model.checkedPaths().isEmpty());

    model.setChecked(2, true);
    model.setReport(handMadeReport()); // a new report forgets the ticks
    QVERIFY(model.checkedPaths().isEmpty());
}

void TestHealthModel::quarantinedMarking()
{
    HealthReportModel model;
    HealthFilterModel proxy;
    proxy.setSourceModel(&model);
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QAbstractItemModelTester proxyTester(&proxy,
                                         QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setReport(handMadeReport());
    model.checkAllErrors();

    const QString moved = QStringLiteral("/data/set/train/cat/1.jpg");
    model.markQuarantined({moved});
    QVERIFY(model.isQuarantined(moved));
    QCOMPARE(model.quarantinedCount(), 1);
    const QModelIndex row0 = model.index(0, HealthReportModel::DetailsColumn);
    QCOMPARE(row0.data().toString(), QStringLiteral("Moved to quarantine"));
    QVERIFY(row0.data(Qt::ForegroundRole).isValid());
    QVERIFY(row0.data(Qt::FontRole).value<QFont>().italic());
    QVERIFY(model.index(0, 0).data(HealthReportModel::QuarantinedRole).toBool());
    QVERIFY(!model.flags(model.index(0, 0)).testFlag(Qt::ItemIsUserCheckable));
    QVERIFY(!model.setData(model.index(0, 0), Qt::Checked, Qt::CheckStateRole));
    // The val copy of cat/1.jpg is another file and stays as it was.
    QVERIFY(!model.index(1, 0).data(HealthReportModel::QuarantinedRole).toBool());
    QCOMPARE(model.checkedPaths(), QStringList{QStringLiteral("/data/set/train/dog/3.jpg")});
    QCOMPARE(model.failingFileCount(), 1);
    QCOMPARE(model.checkAllErrors(), 1); // quarantined files are not ticked again

    model.markRestored({moved});
    QVERIFY(!model.isQuarantined(moved));
    QCOMPARE(row0.data().toString(), QStringLiteral("“cat/1.jpg” has a problem."));
    QVERIFY(!row0.data(Qt::ForegroundRole).isValid());
    QVERIFY(model.flags(model.index(0, 0)).testFlag(Qt::ItemIsUserCheckable));
    QCOMPARE(model.failingFileCount(), 2);
}

QString TestHealthModel::writeValidCorpus(const QString &root, int count)
{
    for (int i = 0; i < count; ++i) {
        const QString path = root + (i % 2 ? u"/cat/"_s : u"/dog/"_s)
            + QStringLiteral("%1.jpg").arg(i, 4, 10, QLatin1Char('0'));
        if (!writeFile(path, encode(testImage(96, 96, quint32(i)), "JPEG", 90)))
            return {};
    }
    return root;
}

void TestHealthModel::panelEmptyState()
{
    HealthPanel panel;
    QVERIFY(!panel.isRunning());
    QVERIFY(!panel.hasReport());
    auto pages = panel.findChild<QStackedWidget *>(QString(), Qt::FindDirectChildrenOnly);
    QVERIFY(pages);
    auto empty = panel.findChild<QLabel *>(QStringLiteral("healthEmptyLabel"));
    QVERIFY(empty);
    QVERIFY(empty->text().startsWith(u"Check decodes every image"));
    QVERIFY(!panel.quarantineAction()->isEnabled());
    QVERIFY(!panel.undoAction()->isEnabled());
    panel.resize(960, 420);
    saveScreenshot(&panel, u"health-empty"_s);

    // Nothing to check: no run, no terminal signal.
    TerminalSpies spies(&panel);
    QSignalSpy status(&panel, &HealthPanel::statusMessage);
    panel.start();
    QVERIFY(!panel.isRunning());
    QCOMPARE(status.count(), 1);
    QCOMPARE(spies.total(), 0);
}

void TestHealthModel::panelEndToEnd()
{
    const QString root = m_dir.filePath(QStringLiteral("hostile"));
    const QByteArray png = encode(testImage(64, 48, 1), "PNG");
    const QByteArray jpeg = encode(testImage(80, 60, 2), "JPEG", 90);
    const QByteArray bigJpeg = encode(testImage(160, 120, 3), "JPEG", 95);
    QVERIFY(!png.isEmpty() && !jpeg.isEmpty() && !bigJpeg.isEmpty());
    const QByteArray text = "This is not an image, whatever its name says.\n";

    QVERIFY(writeFile(root + u"/cat/good.png", png));
    QVERIFY(writeFile(root + u"/cat/photo.jpg", jpeg));
    QVERIFY(writeFile(root + u"/cat/photo_copy.jpg", jpeg));
    QVERIFY(writeFile(root + u"/dog/good.jpg", encode(testImage(64, 64, 4), "JPEG", 90)));
    QVERIFY(writeFile(root + u"/dog/empty.jpg", {}));
    QVERIFY(writeFile(root + u"/dog/notes.png", text));
    QVERIFY(writeFile(root + u"/dog/truncated.jpg", bigJpeg.left(bigJpeg.size() / 2)));

    const IndexPtr index = scan(root);
    QVERIFY(index);
    QCOMPARE(index->sampleCount(), 7);

    HealthPanel panel;
    panel.resize(960, 420);
    panel.setDataset(root, {{QString(), index}});
    QCOMPARE(panel.datasetRoot(), QDir::cleanPath(root));
    TerminalSpies spies(&panel);
    QSignalSpy running(&panel, &HealthPanel::runningChanged);
    panel.start();
    QVERIFY(panel.isRunning());
    QVERIFY(waitForTerminal(spies));
    QCOMPARE(spies.finished.count(), 1);
    QVERIFY(!panel.isRunning());
    QCOMPARE(running.count(), 2);
    QCOMPARE(running.at(0).at(0).toBool(), true);
    QCOMPARE(running.at(1).at(0).toBool(), false);

    // What the model shows.
    HealthReportModel *model = panel.model();
    QHash<QString, QList<Kind>> kinds;
    QHash<QString, Severity> worst;
    for (int row = 0; row < model->rowCount(); ++row) {
        const HealthFinding &finding = model->finding(row);
        kinds[finding.relativePath].append(finding.kind);
        worst[finding.relativePath]
            = std::max(worst.value(finding.relativePath, Severity::Info), finding.severity);
    }
    QVERIFY2(kinds.value(u"dog/empty.jpg"_s).contains(Kind::ZeroByte),
             qPrintable(panel.summaryText()));
    QVERIFY(kinds.value(u"dog/notes.png"_s).contains(Kind::Unreadable));
    QVERIFY(kinds.value(u"dog/truncated.jpg"_s).contains(Kind::Truncated));
    for (const QString &bad : {u"dog/empty.jpg"_s, u"dog/notes.png"_s, u"dog/truncated.jpg"_s})
        QCOMPARE(worst.value(bad), Severity::Error);
    QVERIFY(kinds.value(u"cat/photo_copy.jpg"_s).contains(Kind::Duplicate));
    QVERIFY(!kinds.contains(u"cat/good.png"_s));
    QVERIFY(!kinds.contains(u"dog/good.jpg"_s));
    const QList<QVariant> counts = spies.finished.first();
    QCOMPARE(counts.at(0).toInt(), 3);
    QCOMPARE(counts.at(0).toInt(), model->report().errorCount());
    QCOMPARE(counts.at(1).toInt(), model->report().warningCount());

    const QString summary = panel.summaryText();
    QVERIFY2(summary.contains(u"torchvision would fail on 3 files"), qPrintable(summary));
    QVERIFY2(summary.contains(u"1 duplicate"), qPrintable(summary));

    // The table is shown, sorted with the errors first.
    QTableView *view = panel.view();
    QVERIFY(view->isVisibleTo(&panel));
    QCOMPARE(view->model()->index(0, 0).data(HealthReportModel::SeverityRole).toInt(),
             int(Severity::Error));

    // Copy and export.
    const QStringList lines = panel.reportText().split(u'\n', Qt::SkipEmptyParts);
    QCOMPARE(lines.size(), model->rowCount() + 1);
    QVERIFY(lines.first().startsWith(u"Severity\tProblem\t"));
    const QString jsonPath = m_dir.filePath(QStringLiteral("report.json"));
    QVERIFY(panel.exportReport(jsonPath).ok());
    const QJsonObject json = QJsonDocument::fromJson(readAll(jsonPath)).object();
    QCOMPARE(json.value(u"findings").toArray().size(), model->rowCount());
    QCOMPARE(json.value(u"errors").toInt(), 3);
    QCOMPARE(json.value(u"filesChecked").toInt(), 7);

    // Double-click asks to show the image.
    QSignalSpy activated(&panel, &HealthPanel::fileActivated);
    Q_EMIT view->doubleClicked(view->model()->index(0, HealthReportModel::FileColumn));
    QCOMPARE(activated.count(), 1);
    QVERIFY(activated.first().first().toString().startsWith(QDir::cleanPath(root)));

    saveScreenshot(&panel, u"health-report"_s);

    // Tick the errors and move them to quarantine.
    QCOMPARE(panel.checkErrorsOnly(), 3);
    QVERIFY(panel.quarantineAction()->isEnabled());
    QHash<QString, QByteArray> originals;
    for (const QString &path : model->checkedPaths())
        originals.insert(path, readAll(path));
    QCOMPARE(originals.size(), 3);

    // The confirmation names the count and the destination; declining moves nothing.
    QSignalSpy quarantined(&panel, &HealthPanel::filesQuarantined);
    QString question;
    QTimer::singleShot(0, &panel, [&] {
        auto box = qobject_cast<QMessageBox *>(QApplication::activeModalWidget());
        QVERIFY(box);
        question = box->text() + u'\n' + box->informativeText();
        saveScreenshot(box, u"health-confirm"_s);
        box->reject();
    });
    QVERIFY(!panel.quarantineChecked(true));
    QVERIFY2(question.contains(u"Move 3 files"), qPrintable(question));
    QVERIFY2(question.contains(QDir::toNativeSeparators(defaultQuarantineFolder(root))),
             qPrintable(question));
    QVERIFY2(question.contains(u"Nothing is deleted"), qPrintable(question));
    QCOMPARE(quarantined.count(), 0);
    for (auto it = originals.cbegin(); it != originals.cend(); ++it)
        QVERIFY(QFile::exists(it.key()));
    QCOMPARE(model->checkedPaths().size(), 3);

    QVERIFY(panel.quarantineChecked(false));
    QCOMPARE(quarantined.count(), 1);
    QCOMPARE(panel.quarantineHistory().size(), 1);
    const QuarantineBatch batch = panel.quarantineHistory().first();
    QCOMPARE(batch.entries.size(), 3);
    const QString quarantineRoot = defaultQuarantineFolder(root);
    QVERIFY(!quarantineRoot.startsWith(QDir::cleanPath(root) + u'/'));
    for (const QuarantineEntry &entry : batch.entries) {
        QVERIFY(originals.contains(entry.originalPath));
        QVERIFY2(!QFile::exists(entry.originalPath), qPrintable(entry.originalPath));
        QVERIFY(entry.quarantinedPath.startsWith(quarantineRoot + u'/'));
        QCOMPARE(readAll(entry.quarantinedPath), originals.value(entry.originalPath));
        QVERIFY(model->isQuarantined(entry.originalPath));
    }
    QVERIFY(model->checkedPaths().isEmpty());
    QVERIFY(!panel.quarantineAction()->isEnabled());
    QVERIFY(panel.undoAction()->isEnabled());
    QCOMPARE(model->failingFileCount(), 0);
    QVERIFY2(panel.summaryText().contains(u"3 files moved to quarantine"),
             qPrintable(panel.summaryText()));
    saveScreenshot(&panel, u"health-quarantined"_s);
    // The good files stayed.
    QVERIFY(QFile::exists(root + u"/cat/good.png"));
    QVERIFY(QFile::exists(root + u"/cat/photo_copy.jpg"));

    // A second move (the duplicate), then undo both, last first.
    for (int row = 0; row < model->rowCount(); ++row) {
        if (model->finding(row).kind == Kind::Duplicate)
            model->setChecked(row, true);
    }
    QVERIFY(panel.quarantineChecked(false));
    QCOMPARE(panel.quarantineHistory().size(), 2);
    QVERIFY(!QFile::exists(root + u"/cat/photo_copy.jpg"));

    QSignalSpy undone(&panel, &HealthPanel::quarantineUndone);
    QVERIFY(panel.undoLastQuarantine(false));
    QCOMPARE(readAll(root + u"/cat/photo_copy.jpg"), jpeg);
    QVERIFY(panel.undoLastQuarantine(false));
    QCOMPARE(undone.count(), 2);
    for (auto it = originals.cbegin(); it != originals.cend(); ++it) {
        QVERIFY2(QFile::exists(it.key()), qPrintable(it.key()));
        QCOMPARE(readAll(it.key()), it.value());
        QVERIFY(!model->isQuarantined(it.key()));
    }
    QVERIFY(!panel.undoAction()->isEnabled());
    QVERIFY(!panel.undoLastQuarantine(false));
    QCOMPARE(model->failingFileCount(), 3);

    // Nothing ticked: nothing moved.
    model->uncheckAll();
    QVERIFY(!panel.quarantineChecked(false));
    QCOMPARE(spies.total(), 1);
}

void TestHealthModel::panelNearDuplicatePair()
{
    // A photo in train and a smaller, re-encoded copy of it in val: with near-duplicates asked
    // for, the copy is a leakage error, and its row shows both files side by side.
    const QString root = m_dir.filePath(QStringLiteral("pairs"));
    QImage photo
        = testImage(80, 60, 5).scaled(160, 120, Qt::IgnoreAspectRatio, Qt::SmoothTransformation);
    QImage stripes(160, 120, QImage::Format_RGB888);
    for (int y = 0; y < stripes.height(); ++y)
        for (int x = 0; x < stripes.width(); ++x)
            stripes.setPixel(x, y, (x / 20 + y / 40) % 2 ? qRgb(240, 240, 240) : qRgb(20, 60, 20));
    QVERIFY(writeFile(root + u"/train/a/photo.png", encode(photo, "PNG")));
    QVERIFY(writeFile(root + u"/train/a/stripes.png", encode(stripes, "PNG")));
    QVERIFY(writeFile(
        root + u"/val/a/photo_small.jpg",
        encode(photo.scaled(80, 60, Qt::IgnoreAspectRatio, Qt::SmoothTransformation), "JPEG", 60)));
    QVERIFY(writeFile(root + u"/val/a/stripes_other.png",
                      encode(stripes.mirrored(true, false), "PNG")));
    const IndexPtr train = scan(root + u"/train");
    const IndexPtr val = scan(root + u"/val");
    QVERIFY(train && val);

    HealthPanel panel;
    panel.resize(960, 560);
    panel.setDataset(root, {{QStringLiteral("train"), train}, {QStringLiteral("val"), val}});
    QVERIFY(!panel.nearDuplicatesAction()->isChecked());
    panel.nearDuplicatesAction()->setChecked(true);
    QVERIFY(panel.options().findNearDuplicates);
    TerminalSpies spies(&panel);
    panel.start();
    QVERIFY(waitForTerminal(spies));
    QCOMPARE(spies.finished.count(), 1);
    HealthReportModel *model = panel.model();
    QCOMPARE(model->rowCount(), 1);
    const HealthFinding &finding = model->finding(0);
    QCOMPARE(finding.kind, Kind::NearDuplicate);
    QCOMPARE(finding.severity, Severity::Error);
    QCOMPARE(finding.relativePath, QStringLiteral("a/photo_small.jpg"));
    QCOMPARE(finding.duplicateOf, QStringLiteral("train/a/photo.png"));
    QVERIFY(HealthReportModel::detailsText(finding).startsWith(u"Looks like train/a/photo.png ("));
    QVERIFY2(panel.summaryText().contains(u"1 near-duplicate"), qPrintable(panel.summaryText()));
    QVERIFY2(panel.summaryText().contains(u"torchvision would load every file, but 1 file leaked"),
             qPrintable(panel.summaryText()));
    QCOMPARE(model->failingFileCount(), 0);

    QVERIFY(!panel.pairView()->isVisibleTo(&panel));
    QSignalSpy shown(panel.pairView(), &DuplicatePairView::pairShown);
    panel.view()->setCurrentIndex(panel.filterModel()->index(0, 0));
    QVERIFY(panel.pairView()->isVisibleTo(&panel));
    QCOMPARE(panel.pairView()->paths(),
             QStringList({QDir(root).filePath(QStringLiteral("val/a/photo_small.jpg")),
                          QDir(root).filePath(QStringLiteral("train/a/photo.png"))}));
    QVERIFY(shown.wait(kCheckTimeoutMs));
    QVERIFY(panel.pairView()->isComplete());
    saveScreenshot(&panel, QStringLiteral("near-duplicates"));
}

void TestHealthModel::panelCleanDataset()
{
    const QString root = writeValidCorpus(m_dir.filePath(QStringLiteral("clean")), 6);
    QVERIFY(!root.isEmpty());
    const IndexPtr index = scan(root);
    QVERIFY(index);

    HealthPanel panel;
    panel.setDataset(root, {{QStringLiteral("train"), index}});
    TerminalSpies spies(&panel);
    panel.start();
    QVERIFY(waitForTerminal(spies));
    QCOMPARE(spies.finished.count(), 1);
    QCOMPARE(spies.finished.first().at(0).toInt(), 0);
    QCOMPARE(panel.model()->rowCount(), 0);
    auto success = panel.findChild<QLabel *>(QStringLiteral("healthSuccessLabel"));
    QVERIFY(success);
    QVERIFY(success->isVisibleTo(&panel));
    QCOMPARE(success->text(), QStringLiteral("All 6 images are readable. No duplicates."));
    QVERIFY(!panel.view()->isVisibleTo(&panel));
    panel.resize(960, 420);
    saveScreenshot(&panel, u"health-clean"_s);
}

void TestHealthModel::panelCancel()
{
    const QString root = writeValidCorpus(m_dir.filePath(QStringLiteral("many")), 400);
    QVERIFY(!root.isEmpty());
    const IndexPtr index = scan(root);
    QVERIFY(index);

    HealthPanel panel;
    panel.setDataset(root, {{QString(), index}});
    TerminalSpies spies(&panel);
    QSignalSpy running(&panel, &HealthPanel::runningChanged);
    if (!qEnvironmentVariableIsEmpty("IFS_SCREENSHOT_DIR")) {
        // Slow enough to be caught running: more files, one thread.
        const QString slowRoot = m_dir.filePath(QStringLiteral("slow"));
        const QByteArray big = encode(testImage(1024, 768, 7), "PNG");
        for (int i = 0; i < 1500; ++i) {
            const QString name = QStringLiteral("/c%1/%2.png").arg(i % 3).arg(i);
            QVERIFY(writeFile(slowRoot + name, big));
        }
        HealthPanel slowPanel;
        slowPanel.resize(960, 420);
        slowPanel.setDataset(slowRoot, {{u"train"_s, scan(slowRoot)}});
        HealthOptions slow;
        slow.threads = 1;
        slow.findDuplicates = false;
        slowPanel.setOptions(slow);
        TerminalSpies slowSpies(&slowPanel);
        QSignalSpy progress(&slowPanel, &HealthPanel::progressChanged);
        slowPanel.start();
        QVERIFY(QTest::qWaitFor([&] { return progress.count() >= 4; }));
        saveScreenshot(&slowPanel, u"health-running"_s);
        slowPanel.cancel();
        QVERIFY(waitForTerminal(slowSpies));
        QTest::qWait(50);
        saveScreenshot(&slowPanel, u"health-cancelled"_s);
    }
    // The check waits at a gate until the cancel is in: otherwise a starved GUI thread could let
    // all 400 files be checked before cancel() runs, and the run would end as finished.
    QSemaphore gate;
    panel.setCheckFunction([&gate](const QList<HealthTarget> &targets, const HealthOptions &options,
                                   const std::function<void(int64_t, int64_t)> &progress,
                                   const std::atomic_bool *cancel) {
        gate.acquire();
        return checkHealth(targets, options, progress, cancel);
    });
    panel.start();
    panel.cancel();
    panel.cancel(); // twice is harmless
    gate.release();
    QVERIFY(waitForTerminal(spies));
    processPosted(); // nothing else may follow
    QCOMPARE(spies.total(), 1);
    QCOMPARE(spies.cancelled.count(), 1);
    QCOMPARE(running.count(), 2);
    QVERIFY(!panel.isRunning());
    QVERIFY(panel.model()->report().cancelled);

    // The panel runs again after a cancel, to the end this time.
    panel.setCheckFunction(checkHealth);
    panel.start();
    QVERIFY(waitForTerminal(spies, 2));
    processPosted();
    QCOMPARE(spies.total(), 2);
    QCOMPARE(spies.finished.count(), 1);
    QCOMPARE(panel.model()->report().filesChecked, 400);
}

void TestHealthModel::panelDatasetChangeCancels()
{
    const QString root = writeValidCorpus(m_dir.filePath(QStringLiteral("switch")), 200);
    QVERIFY(!root.isEmpty());
    const IndexPtr index = scan(root);
    QVERIFY(index);

    HealthPanel panel;
    panel.setDataset(root, {{QString(), index}});
    TerminalSpies spies(&panel);
    panel.start();
    panel.setDataset(QString(), {});
    QVERIFY(waitForTerminal(spies));
    processPosted();
    QCOMPARE(spies.total(), 1);
    QCOMPARE(spies.cancelled.count(), 1);
    QVERIFY(!panel.hasReport());
    QCOMPARE(panel.model()->rowCount(), 0);
}

void TestHealthModel::panelDestroyedWhileRunning()
{
    const QString root = writeValidCorpus(m_dir.filePath(QStringLiteral("destroy")), 200);
    QVERIFY(!root.isEmpty());
    IndexPtr index = scan(root);
    QVERIFY(index);

    // The check waits at a gate the test opens: the run is certainly going when the panel goes.
    struct Gate
    {
        QSemaphore arrived, open, done;
        std::atomic<int64_t> samples = -1;
        std::atomic_bool cancelled = false;
    };
    auto gate = std::make_shared<Gate>();
    auto panel = std::make_unique<HealthPanel>();
    panel->setCheckFunction([gate](const QList<HealthTarget> &targets, const HealthOptions &options,
                                   const std::function<void(int64_t, int64_t)> &progress,
                                   const std::atomic_bool *cancel) {
        gate->arrived.release();
        gate->open.acquire();
        gate->samples = targets.constFirst().index->sampleCount();
        gate->cancelled = cancel && cancel->load();
        HealthReport report = checkHealth(targets, options, progress, cancel);
        gate->done.release();
        return report;
    });
    panel->setDataset(root, {{QString(), index}});
    index.reset(); // the run keeps its own reference
    TerminalSpies spies(panel.get());
    panel->start();
    QVERIFY(gate->arrived.tryAcquire(1, kCheckTimeoutMs));
    // Cancels without waiting: a panel that waited here would never come back, the check being
    // held at the gate.
    panel.reset();
    gate->open.release();
    QVERIFY(gate->done.tryAcquire(1, kCheckTimeoutMs));
    processPosted();
    QCOMPARE(spies.total(), 0);
    QCOMPARE(gate->samples.load(), 200); // the index outlived the test's reference
    QVERIFY(gate->cancelled.load());
}

QTEST_MAIN(TestHealthModel)
#include "tst_healthmodel.moc"
