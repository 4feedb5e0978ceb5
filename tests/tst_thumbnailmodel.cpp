// The Datasets workspace's thumbnail grid: loader, model, view and the details panel, on real
// image files written into a temporary ImageFolder.
#include "base/filenames.h"
#include "common/thumbnailloader.h"
#include "dataset/imagefolder.h"
#include "datasets/imagedetailspanel.h"
#include "datasets/thumbnailmodel.h"
#include "datasets/thumbnailview.h"

#include <QAbstractItemModelTester>
#include <QClipboard>
#include <QDir>
#include <QElapsedTimer>
#include <QFile>
#include <QGuiApplication>
#include <QImage>
#include <QImageReader>
#include <QImageWriter>
#include <QLabel>
#include <QLineEdit>
#include <QLocale>
#include <QPixmap>
#include <QScopeGuard>
#include <QScrollBar>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>

#include "testutil.h"

#include <memory>
#include <numeric>

using namespace ifs;

namespace {

struct SourceImage
{
    const char *relativePath;
    QSize size;
    QColor color;
    const char *format; // nullptr: not an image at all
};

// Sorted as torchvision lists them: classes by name, then files by name.
const SourceImage kImages[] = {
    {"cat/blue.jpg", {90, 180}, QColor(20, 40, 230), "JPEG"},
    {"cat/red.png", {200, 100}, QColor(220, 30, 30), "PNG"},
    {"dog/broken.jpg", {}, {}, nullptr},
    {"dog/green.png", {40, 30}, QColor(30, 200, 60), "PNG"},
    {"dog/rotated.jpg", {120, 60}, QColor(240, 200, 40), "JPEG"},
};
constexpr int kBlue = 0;
constexpr int kRed = 1;
constexpr int kBroken = 2;
constexpr int kGreen = 3;
constexpr int kRotated = 4;

bool colorNear(const QColor &actual, const QColor &expected, int tolerance)
{
    return qAbs(actual.red() - expected.red()) <= tolerance
        && qAbs(actual.green() - expected.green()) <= tolerance
        && qAbs(actual.blue() - expected.blue()) <= tolerance;
}

// Qt's JPEG writer rotates the pixels instead of storing an orientation: add the EXIF block by
// hand, right after the SOI marker (a little-endian TIFF with one IFD entry, tag 0x0112).
bool addExifOrientation(const QString &path, quint16 orientation)
{
    QFile file(path);
    if (!file.open(QIODevice::ReadWrite))
        return false;
    QByteArray jpeg = file.readAll();
    if (!jpeg.startsWith("\xFF\xD8"))
        return false;
    QByteArray app1 = QByteArrayLiteral("\xFF\xE1\x00\x22"
                                        "Exif\x00\x00"
                                        "II\x2A\x00\x08\x00\x00\x00"
                                        "\x01\x00"
                                        "\x12\x01\x03\x00\x01\x00\x00\x00");
    app1.append(char(orientation & 0xff)).append(char(orientation >> 8));
    app1.append(QByteArray(2 + 4, '\0')); // value padding, next IFD offset
    jpeg.insert(2, app1);
    file.seek(0);
    return file.write(jpeg) == jpeg.size();
}

std::vector<int> allRows(const ImageFolderIndex &index)
{
    std::vector<int> rows(index.samples.size());
    std::iota(rows.begin(), rows.end(), 0);
    return rows;
}

} // namespace

class TestThumbnailModel : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void initTestCase();

    void rowsAndRoles();
    void placeholderIsImmediate();
    void thumbnailMatchesSource_data();
    void thumbnailMatchesSource();
    void corruptFileFails();
    void loaderDeduplicates();
    void modelDeduplicates();
    void prioritizeCancelsTheRest();
    void setDatasetDropsStaleResults();
    void thumbnailSizeSteps();
    void viewRequestsOnlyNearVisibleRows();
    void viewReportsCurrentSample();
    void detailsPanelShowsHeader();
    void detailsPanelShowsOrientation();
    void detailsPanelShowsError();
    void detailsPanelFormatting();
    void undecodableNamesShowReadablyAndLoad();

private:
    QTemporaryDir m_dir;
    IndexPtr m_index;
    IndexPtr m_manyIndex; // 20k samples, symlinks to the few real files
};

void TestThumbnailModel::initTestCase()
{
    QLocale::setDefault(QLocale(QLocale::English, QLocale::UnitedStates));
    QVERIFY(m_dir.isValid());
    auto index = std::make_shared<ImageFolderIndex>();
    index->root = QDir(m_dir.path() + QStringLiteral("/data")).absolutePath();
    index->classes = {QStringLiteral("cat"), QStringLiteral("dog")};
    index->counts = {0, 0};
    for (const SourceImage &source : kImages) {
        const QString relative = QString::fromLatin1(source.relativePath);
        const QString path = index->root + u'/' + relative;
        QVERIFY(QDir().mkpath(QFileInfo(path).absolutePath()));
        if (!source.format) {
            QFile file(path);
            QVERIFY(file.open(QIODevice::WriteOnly));
            file.write("this is not a JPEG, just text with a .jpg name\n");
        } else {
            QImage image(source.size, QImage::Format_RGB32);
            image.fill(source.color);
            QImageWriter writer(path, source.format);
            writer.setQuality(95);
            QVERIFY2(writer.write(image), qPrintable(writer.errorString()));
            if (relative == u"dog/rotated.jpg")
                QVERIFY(addExifOrientation(path, 6));
        }
        const int classIndex = relative.startsWith(u"cat/") ? 0 : 1;
        index->addSample(source.relativePath, classIndex);
        ++index->counts[size_t(classIndex)];
    }
    m_index = index;

    // A class of 20k images for the view, all distinct paths to the few real files: 200 links to
    // one folder of 100 links (cheaper to make than 20k links).
    auto many = std::make_shared<ImageFolderIndex>();
    many->root = QDir(m_dir.path() + QStringLiteral("/many")).absolutePath();
    many->classes = {QStringLiteral("lots")};
    const QString pool = m_dir.path() + QStringLiteral("/pool");
    QVERIFY(QDir().mkpath(pool));
    QVERIFY(QDir().mkpath(many->root + QStringLiteral("/lots")));
    const QString targets[] = {index->root + QStringLiteral("/cat/red.png"),
                               index->root + QStringLiteral("/cat/blue.jpg"),
                               index->root + QStringLiteral("/dog/green.png")};
    const auto fileName = [](int file) {
        return QStringLiteral("img_%1.png").arg(file, 2, 10, QLatin1Char('0'));
    };
    for (int file = 0; file < 100; ++file)
        QVERIFY(QFile::link(targets[file % 3], pool + u'/' + fileName(file)));
    for (int folder = 0; folder < 200; ++folder) {
        const QString name = QStringLiteral("lots/f%1").arg(folder, 3, 10, QLatin1Char('0'));
        QVERIFY(QFile::link(pool, many->root + u'/' + name));
        for (int file = 0; file < 100; ++file) {
            const QString relative = name + u'/' + fileName(file);
            many->addSample(relative.toStdString(), 0);
        }
    }
    many->counts = {20000};
    m_manyIndex = many;
}

void TestThumbnailModel::rowsAndRoles()
{
    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    QCOMPARE(model.rowCount(), 0);

    model.setDataset(m_index, allRows(*m_index));
    QCOMPARE(model.rowCount(), int(std::size(kImages)));
    const QModelIndex red = model.index(kRed);
    QCOMPARE(red.data(Qt::DisplayRole).toString(), QStringLiteral("red.png"));
    QCOMPARE(red.data(ThumbnailModel::RelativePathRole).toString(), QStringLiteral("cat/red.png"));
    QCOMPARE(red.data(ThumbnailModel::PathRole).toString(),
             m_index->root + QStringLiteral("/cat/red.png"));
    QCOMPARE(red.data(ThumbnailModel::SampleRowRole).toInt(), kRed);
    QCOMPARE(red.data(ThumbnailModel::ClassIndexRole).toInt(), 0);
    QCOMPARE(red.data(ThumbnailModel::ClassNameRole).toString(), QStringLiteral("cat"));
    const QString tip = red.data(Qt::ToolTipRole).toString();
    QVERIFY2(tip.contains(u"cat/red.png") && tip.contains(u"cat"), qPrintable(tip));
    QCOMPARE(model.sampleRow(red), kRed);
    QCOMPARE(model.sampleRow({}), -1);

    // One class; rows out of range are dropped.
    std::vector<int> dogs = ThumbnailModel::sampleRowsOfClass(*m_index, 1);
    QCOMPARE(dogs, (std::vector<int>{kBroken, kGreen, kRotated}));
    dogs.push_back(99);
    dogs.push_back(-1);
    model.setDataset(m_index, dogs);
    QCOMPARE(model.rowCount(), 3);
    QCOMPARE(model.sampleRow(model.index(1)), kGreen);
    QCOMPARE(model.indexForSampleRow(kGreen), model.index(1));
    QVERIFY(!model.indexForSampleRow(kRed).isValid());
    QCOMPARE(ThumbnailModel::sampleRowsOfClass(*m_index, -1).size(), std::size(kImages));

    model.clear();
    QCOMPARE(model.rowCount(), 0);
}

void TestThumbnailModel::placeholderIsImmediate()
{
    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setThumbnailSize(64);
    model.setDataset(m_index, {kRed});
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);

    // data() returns at once with a placeholder and only queues the decode.
    const QModelIndex red = model.index(0);
    const QVariant decoration = red.data(Qt::DecorationRole);
    QCOMPARE(red.data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Pending));
    QVERIFY(decoration.canConvert<QPixmap>());
    QVERIFY(!decoration.value<QPixmap>().isNull());
    QCOMPARE(changed.count(), 0);
    QCOMPARE(model.loader()->pendingCount(), 1);

    QVERIFY(changed.wait(10000));
    QCOMPARE(changed.count(), 1);
    QCOMPARE(changed.at(0).at(0).value<QModelIndex>(), red);
    QCOMPARE(red.data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Ready));
    QCOMPARE(model.loader()->pendingCount(), 0);
}

void TestThumbnailModel::thumbnailMatchesSource_data()
{
    QTest::addColumn<int>("sampleRow");
    QTest::addColumn<QSize>("expectedSize");
    QTest::addColumn<int>("tolerance");
    QTest::newRow("wide PNG scaled down") << kRed << QSize(64, 32) << 3;
    QTest::newRow("tall JPEG scaled down") << kBlue << QSize(32, 64) << 12;
    QTest::newRow("small PNG kept") << kGreen << QSize(40, 30) << 3;
}

void TestThumbnailModel::thumbnailMatchesSource()
{
    QFETCH(int, sampleRow);
    QFETCH(QSize, expectedSize);
    QFETCH(int, tolerance);

    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setThumbnailSize(64);
    QCOMPARE(model.thumbnailSize(), 64);
    model.setDataset(m_index, {sampleRow});
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    const QModelIndex item = model.index(0);
    item.data(Qt::DecorationRole);
    QVERIFY(changed.wait(10000));

    QCOMPARE(item.data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Ready));
    const QPixmap pixmap = item.data(Qt::DecorationRole).value<QPixmap>();
    QCOMPARE(pixmap.size(), expectedSize);
    // Solid colours stay what they were: no channel swapped, no gray conversion.
    const QImage image = pixmap.toImage();
    const QColor expected = kImages[sampleRow].color;
    for (const QPoint &point : {QPoint(image.width() / 2, image.height() / 2), QPoint(1, 1),
                                QPoint(image.width() - 2, image.height() - 2)}) {
        const QColor actual = image.pixelColor(point);
        QVERIFY2(colorNear(actual, expected, tolerance),
                 qPrintable(QStringLiteral("%1 at (%2, %3), expected %4")
                                .arg(actual.name())
                                .arg(point.x())
                                .arg(point.y())
                                .arg(expected.name())));
    }
    QVERIFY(item.data(ThumbnailModel::ErrorRole).toString().isEmpty());
}

void TestThumbnailModel::corruptFileFails()
{
    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDataset(m_index, allRows(*m_index));
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    const QModelIndex broken = model.index(kBroken);
    broken.data(Qt::DecorationRole);
    QVERIFY(changed.wait(10000));

    QCOMPARE(broken.data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Failed));
    const QString error = broken.data(ThumbnailModel::ErrorRole).toString();
    QVERIFY2(error.contains(u"broken.jpg"), qPrintable(error));
    QVERIFY(broken.data(Qt::ToolTipRole).toString().contains(error));
    QVERIFY(!broken.data(Qt::DecorationRole).value<QPixmap>().isNull()); // the broken glyph
    // A failure is remembered: painting again does not retry the decode.
    const int64_t decodes = model.loader()->decodeCount();
    broken.data(Qt::DecorationRole);
    QCOMPARE(model.loader()->pendingCount(), 0);
    QCOMPARE(model.loader()->decodeCount(), decodes);
}

void TestThumbnailModel::loaderDeduplicates()
{
    ThumbnailLoader loader;
    loader.setThumbnailSize(48);
    QSignalSpy ready(&loader, &ThumbnailLoader::thumbnailReady);
    QSignalSpy failed(&loader, &ThumbnailLoader::thumbnailFailed);
    const QString path = m_index->absolutePath(m_index->samples[kRed]);
    for (int i = 0; i < 100; ++i)
        loader.request(path, i % 7);
    QCOMPARE(loader.pendingCount(), 1);
    QCOMPARE(loader.requestCount(), 1);
    QVERIFY(loader.isPending(path));

    QVERIFY(ready.wait(10000));
    QTRY_COMPARE(loader.runningCount(), 0); // every decode is back: nothing more can arrive
    QCOMPARE(ready.count(), 1);
    QCOMPARE(failed.count(), 0);
    QCOMPARE(loader.decodeCount(), 1);
    QCOMPARE(ready.at(0).at(0).toString(), path);
    const QImage image = ready.at(0).at(1).value<QImage>();
    QCOMPARE(image.size(), QSize(48, 24));
    QVERIFY(!loader.isPending(path));
}

void TestThumbnailModel::modelDeduplicates()
{
    ThumbnailModel model;
    model.setDataset(m_index, allRows(*m_index));
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    for (int i = 0; i < 100; ++i)
        model.index(kBlue).data(Qt::DecorationRole);
    QCOMPARE(model.loader()->pendingCount(), 1);
    QVERIFY(changed.wait(10000));
    QTRY_COMPARE(model.loader()->runningCount(), 0);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(model.loader()->decodeCount(), 1);
    // Cached now: more paints decode nothing.
    for (int i = 0; i < 100; ++i)
        model.index(kBlue).data(Qt::DecorationRole);
    QCOMPARE(model.loader()->pendingCount(), 0);
    QCOMPARE(model.loader()->decodeCount(), 1);
}

void TestThumbnailModel::prioritizeCancelsTheRest()
{
    ThumbnailLoader loader;
    loader.setThreadCount(1); // two jobs handed to the pool, the rest queued here
    QSignalSpy ready(&loader, &ThumbnailLoader::thumbnailReady);
    QSignalSpy failed(&loader, &ThumbnailLoader::thumbnailFailed);
    QStringList paths;
    for (const Sample &sample : m_index->samples)
        paths.append(m_index->absolutePath(sample));
    for (const QString &path : std::as_const(paths))
        loader.request(path);
    QCOMPARE(loader.pendingCount(), int(paths.size()));

    // paths[0] and [1] are decoding; [2] and [3] scroll away, [4] becomes visible.
    loader.prioritize({paths[4]});
    QCOMPARE(loader.pendingCount(), 3);
    QTRY_COMPARE_WITH_TIMEOUT(loader.pendingCount(), 0, 10000);
    QTRY_COMPARE(loader.runningCount(), 0);

    QStringList delivered;
    for (const QList<QVariant> &args : std::as_const(ready))
        delivered.append(args.at(0).toString());
    for (const QList<QVariant> &args : std::as_const(failed))
        delivered.append(args.at(0).toString());
    delivered.sort();
    QCOMPARE(delivered, (QStringList{paths[0], paths[1], paths[4]}));
    QCOMPARE(loader.decodeCount(), 3);

    // clear() forgets the queue and the results still on their way.
    for (const QString &path : std::as_const(paths))
        loader.request(path);
    loader.clear();
    QCOMPARE(loader.pendingCount(), 0);
    const int before = int(ready.count() + failed.count());
    // The decodes that were running come back and are dropped.
    QTRY_COMPARE_WITH_TIMEOUT(loader.runningCount(), 0, 10000);
    QCOMPARE(int(ready.count() + failed.count()), before);
}

void TestThumbnailModel::setDatasetDropsStaleResults()
{
    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDataset(m_index, allRows(*m_index));
    for (int row = 0; row < model.rowCount(); ++row)
        model.index(row).data(Qt::DecorationRole);
    QVERIFY(model.loader()->pendingCount() > 0);

    // Switch to the dogs while the cats are decoding.
    model.setDataset(m_index, ThumbnailModel::sampleRowsOfClass(*m_index, 1));
    QCOMPARE(model.loader()->pendingCount(), 0);
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    // The cats' decodes come back and are dropped.
    QTRY_COMPARE_WITH_TIMEOUT(model.loader()->runningCount(), 0, 10000);
    QCOMPARE(changed.count(), 0);
    for (int row = 0; row < model.rowCount(); ++row)
        QCOMPARE(model.index(row).data(ThumbnailModel::StateRole).toInt(),
                 int(ThumbnailModel::Pending));

    // Back to all: nothing of the dropped decodes was cached.
    model.setDataset(m_index, allRows(*m_index));
    QCOMPARE(model.index(kRed).data(ThumbnailModel::StateRole).toInt(),
             int(ThumbnailModel::Pending));

    // Within one scan the cache survives a class switch.
    model.index(kRed).data(Qt::DecorationRole);
    QVERIFY(changed.wait(10000));
    model.setDataset(m_index, {kRed});
    QCOMPARE(model.index(0).data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Ready));
    // A new scan starts afresh.
    model.setDataset(std::make_shared<ImageFolderIndex>(*m_index), {kRed});
    QCOMPARE(model.index(0).data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Pending));
}

void TestThumbnailModel::thumbnailSizeSteps()
{
    ThumbnailModel model;
    model.setThumbnailSize(100);
    QCOMPARE(model.thumbnailSize(), 128);
    model.setThumbnailSize(129);
    QCOMPARE(model.thumbnailSize(), 192);
    model.setThumbnailSize(64);
    QCOMPARE(model.thumbnailSize(), 64);
    QCOMPARE(model.loader()->thumbnailSize(), 64);

    // A thumbnail of the old size stays on screen while the new one is decoded.
    model.setDataset(m_index, {kRed});
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    model.index(0).data(Qt::DecorationRole);
    QVERIFY(changed.wait(10000));
    model.setThumbnailSize(128);
    QCOMPARE(model.index(0).data(Qt::DecorationRole).value<QPixmap>().width(), 64);
    QCOMPARE(model.index(0).data(ThumbnailModel::StateRole).toInt(), int(ThumbnailModel::Ready));
    QCOMPARE(model.loader()->pendingCount(), 1);
    changed.clear();
    QVERIFY(changed.wait(10000));
    QCOMPARE(model.index(0).data(Qt::DecorationRole).value<QPixmap>().width(), 128);
}

void TestThumbnailModel::viewRequestsOnlyNearVisibleRows()
{
    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setDataset(m_manyIndex, allRows(*m_manyIndex));
    QCOMPARE(model.rowCount(), 20000);

    ThumbnailView view;
    view.setThumbnailSize(64);
    view.setModel(&model);
    view.resize(640, 480);
    QElapsedTimer timer;
    timer.start();
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    qInfo("20k rows laid out and shown in %lld ms", timer.elapsed());

    const ThumbnailLoader *loader = model.loader();
    QTRY_VERIFY(loader->requestCount() > 0);
    auto [first, last] = view.visibleRowRange();
    QCOMPARE(first, 0);
    QVERIFY2(last > 10 && last < 200, qPrintable(QString::number(last)));
    const int screenful = last - first + 1;
    // Visible rows arrive; the screen ahead is prefetched, nothing more.
    QTRY_COMPARE_WITH_TIMEOUT(model.index(last).data(ThumbnailModel::StateRole).toInt(),
                              int(ThumbnailModel::Ready), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(loader->pendingCount(), 0, 20000);
    QVERIFY2(loader->requestCount() <= 2 * screenful,
             qPrintable(QString::number(loader->requestCount())));
    QCOMPARE(model.index(2 * screenful + 50).data(ThumbnailModel::StateRole).toInt(),
             int(ThumbnailModel::Pending));

    view.scrollToBottom();
    QTRY_COMPARE(view.visibleRowRange().second, 19999);
    std::tie(first, last) = view.visibleRowRange();
    QVERIFY2(first > 19999 - 200, qPrintable(QString::number(first)));
    QTRY_COMPARE_WITH_TIMEOUT(model.index(19999).data(ThumbnailModel::StateRole).toInt(),
                              int(ThumbnailModel::Ready), 20000);
    QTRY_COMPARE_WITH_TIMEOUT(model.index(first).data(ThumbnailModel::StateRole).toInt(),
                              int(ThumbnailModel::Ready), 20000);

    // Jump through the middle without pausing: what flew by is cancelled once scrolling settles.
    QScrollBar *bar = view.verticalScrollBar();
    for (int step = 1; step <= 20; ++step) {
        bar->setValue(bar->maximum() * step / 40);
        view.viewport()->repaint();
    }
    QTRY_VERIFY(!view.isSettling()); // the flown-by rows are cancelled as it settles
    std::tie(first, last) = view.visibleRowRange();
    QVERIFY(first > 19999 / 2 - 200 && last < 19999 / 2 + 200);
    // The visible rows, one screen ahead, and the decodes that were already running.
    QVERIFY2(loader->pendingCount() <= 2 * (last - first + 1) + 3,
             qPrintable(QString::number(loader->pendingCount())));
    QTRY_COMPARE_WITH_TIMEOUT(loader->pendingCount(), 0, 20000);
    qInfo("requests %lld, decodes %lld for %d rows", qlonglong(loader->requestCount()),
          qlonglong(loader->decodeCount()), model.rowCount());
    QVERIFY(loader->decodeCount() < 1000);
    QVERIFY(loader->requestCount() < 2000);

    // A new thumbnail size keeps the current item in view.
    view.setCurrentIndex(model.index(15000));
    QTRY_VERIFY(view.visibleRowRange().first <= 15000 && view.visibleRowRange().second >= 15000);
    view.setThumbnailSize(160);
    QCOMPARE(view.thumbnailSize(), 160);
    QCOMPARE(model.thumbnailSize(), 192);
    QTRY_VERIFY(view.visibleRowRange().first <= 15000 && view.visibleRowRange().second >= 15000);
    QTRY_COMPARE_WITH_TIMEOUT(model.index(15000).data(Qt::DecorationRole).value<QPixmap>().width(),
                              192, 20000);
}

void TestThumbnailModel::viewReportsCurrentSample()
{
    ThumbnailModel model;
    model.setDataset(m_index, allRows(*m_index));
    ThumbnailView view;
    view.setModel(&model);
    view.resize(600, 400);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QSignalSpy current(&view, &ThumbnailView::currentSampleChanged);

    QVERIFY(view.setCurrentSampleRow(kGreen));
    QCOMPARE(current.count(), 1);
    QCOMPARE(current.takeFirst().at(0).toInt(), kGreen);
    QCOMPARE(view.currentSampleRow(), kGreen);
    QCOMPARE(view.selectedSampleRows(), QList<int>{kGreen});

    // Keyboard navigation is QListView's.
    view.setFocus();
    QTest::keyClick(&view, Qt::Key_Left);
    QCOMPARE(current.count(), 1);
    QCOMPARE(current.takeFirst().at(0).toInt(), kBroken);
    QTest::keyClick(&view, Qt::Key_Home);
    QCOMPARE(current.takeFirst().at(0).toInt(), kBlue);

    QSignalSpy activated(&view, &ThumbnailView::sampleActivated);
    QTest::keyClick(&view, Qt::Key_Return);
    QCOMPARE(activated.count(), 1);
    QCOMPARE(activated.at(0).at(0).toInt(), kBlue);

    // Showing one class of the same scan: the current item is gone.
    model.setDataset(m_index, {kGreen});
    QCOMPARE(current.count(), 1);
    QCOMPARE(current.takeFirst().at(0).toInt(), -1);
    QVERIFY(!view.setCurrentSampleRow(kRed));
}

void TestThumbnailModel::detailsPanelShowsHeader()
{
    ImageDetailsPanel panel;
    panel.resize(360, 560);
    panel.show();
    auto *empty = panel.findChild<QLabel *>(QStringLiteral("emptyLabel"));
    QVERIFY(empty);
    QVERIFY(empty->isVisible());
    QCOMPARE(empty->text(), QStringLiteral("Select an image to see its details"));
    QVERIFY(!panel.copyPathAction()->isEnabled());

    QSignalSpy loaded(&panel, &ImageDetailsPanel::sampleLoaded);
    panel.showSample(m_index, kRed);
    QVERIFY(panel.isLoading());
    QVERIFY(loaded.wait(10000));
    QCOMPARE(loaded.at(0).at(0).toInt(), kRed);
    QVERIFY(!panel.isLoading());
    QVERIFY(!empty->isVisible());

    const auto text = [&panel](const char *name) {
        const auto *label = panel.findChild<QLabel *>(QString::fromLatin1(name));
        return label ? label->text() : QStringLiteral("<no %1>").arg(QString::fromLatin1(name));
    };
    QCOMPARE(panel.findChild<QLineEdit *>(QStringLiteral("pathValue"))->text(),
             QStringLiteral("cat/red.png"));
    QCOMPARE(text("classValue"), QStringLiteral("cat (index 0)"));
    QCOMPARE(text("sizeValue"), QStringLiteral("200 × 100 px"));
    QCOMPARE(text("modeValue"), QStringLiteral("RGB (8 bits per channel)"));
    QCOMPARE(text("formatValue"), QStringLiteral("PNG"));
    const qint64 bytes = QFileInfo(m_index->absolutePath(m_index->samples[kRed])).size();
    QCOMPARE(text("fileSizeValue"), ImageDetailsPanel::describeFileSize(bytes));
    QCOMPARE(text("orientationValue"), QStringLiteral("1 — normal"));
    QVERIFY(panel.copyPathAction()->isEnabled());

    panel.copyPathAction()->trigger();
    QCOMPARE(QGuiApplication::clipboard()->text(),
             QDir::toNativeSeparators(m_index->absolutePath(m_index->samples[kRed])));

    // The JPEG next; the panel switches in one go.
    panel.showSample(m_index, kBlue);
    QVERIFY(loaded.wait(10000));
    QCOMPARE(text("sizeValue"), QStringLiteral("90 × 180 px"));
    QCOMPARE(text("formatValue"), QStringLiteral("JPEG"));

    panel.clear();
    QVERIFY(empty->isVisible());
    QCOMPARE(panel.sampleRow(), -1);
    QVERIFY(!panel.copyPathAction()->isEnabled());
}

void TestThumbnailModel::detailsPanelShowsOrientation()
{
    const QString path = m_index->absolutePath(m_index->samples[kRotated]);
    if (QImageReader(path).transformation() != QImageIOHandler::TransformationRotate90)
        QSKIP("This Qt's JPEG writer does not store an EXIF orientation");
    ImageDetailsPanel panel;
    QSignalSpy loaded(&panel, &ImageDetailsPanel::sampleLoaded);
    panel.showSample(m_index, kRotated);
    QVERIFY(loaded.wait(10000));
    QCOMPARE(panel.findChild<QLabel *>(QStringLiteral("orientationValue"))->text(),
             QStringLiteral("6 — rotated 90° CW; torchvision ignores it"));
    // Stored pixels, as torchvision sees them: not rotated.
    QCOMPARE(panel.findChild<QLabel *>(QStringLiteral("sizeValue"))->text(),
             QStringLiteral("120 × 60 px"));
}

void TestThumbnailModel::detailsPanelShowsError()
{
    ImageDetailsPanel panel;
    QSignalSpy loaded(&panel, &ImageDetailsPanel::sampleLoaded);
    panel.showSample(m_index, kBroken);
    QVERIFY(loaded.wait(10000));
    const auto *preview = panel.findChild<QWidget *>(QStringLiteral("preview"));
    QVERIFY(preview);
    const QString message = preview->toolTip();
    QVERIFY2(message.startsWith(QStringLiteral("Cannot read image “dog/broken.jpg”:")),
             qPrintable(message));
    QVERIFY(!message.contains(m_index->root)); // named relative to the dataset, reason kept
    QCOMPARE(panel.findChild<QLabel *>(QStringLiteral("sizeValue"))->text(), QStringLiteral("—"));

    // Out of range: back to the empty state.
    panel.showSample(m_index, 1000);
    QCOMPARE(panel.sampleRow(), -1);
}

void TestThumbnailModel::detailsPanelFormatting()
{
    QCOMPARE(ImageDetailsPanel::describeFileSize(512), QStringLiteral("512 bytes"));
    QCOMPARE(ImageDetailsPanel::describeFileSize(12595), QStringLiteral("12.3 KiB (12,595 bytes)"));
    QCOMPARE(ImageDetailsPanel::describeOrientation(1), QStringLiteral("1 — normal"));
    QCOMPARE(ImageDetailsPanel::describeOrientation(6),
             QStringLiteral("6 — rotated 90° CW; torchvision ignores it"));
    QCOMPARE(ImageDetailsPanel::describeOrientation(8),
             QStringLiteral("8 — rotated 90° CCW; torchvision ignores it"));
}

void TestThumbnailModel::undecodableNamesShowReadablyAndLoad()
{
    // A name that is not valid UTF-8 (legal on Linux, and torchvision loads it): the grid and the
    // details panel show U+FFFD for the undecodable bytes, and the thumbnail opens by the bytes.
    QTemporaryDir tmp;
    const auto cleanup = qScopeGuard([&] { test::removeTree(tmp.path()); });
    QFile red(m_index->absolutePath(m_index->samples[kRed]));
    QVERIFY(red.open(QIODevice::ReadOnly));
    QVERIFY(
        test::writeFile(tmp.path() + u'/' + decodeFileName("c\xff/r\xfe\xc3.png"), red.readAll()));
    const Result<ImageFolderIndex> scanned = scanImageFolder(tmp.path());
    QVERIFY2(scanned.ok() && scanned->sampleCount() == 1, qPrintable(scanned.errorMessage()));
    const IndexPtr index = std::make_shared<const ImageFolderIndex>(scanned.value());

    ThumbnailModel model;
    QAbstractItemModelTester tester(&model, QAbstractItemModelTester::FailureReportingMode::QtTest);
    model.setThumbnailSize(64);
    model.setDataset(index, {0});
    const QModelIndex item = model.index(0);
    QCOMPARE(item.data(Qt::DisplayRole).toString(), QStringLiteral("r\uFFFD\uFFFD.png"));
    QVERIFY(!hasEscapedBytes(item.data(Qt::ToolTipRole).toString()));
    // The roles code reads keep the exact name.
    QCOMPARE(item.data(ThumbnailModel::RelativePathRole).toString(),
             decodeFileName("c\xff/r\xfe\xc3.png"));
    QSignalSpy changed(&model, &QAbstractItemModel::dataChanged);
    item.data(Qt::DecorationRole);
    QVERIFY(changed.wait(10000));
    QVERIFY2(item.data(ThumbnailModel::StateRole).toInt() == int(ThumbnailModel::Ready),
             qPrintable(displayFileName(item.data(ThumbnailModel::ErrorRole).toString())));
    QCOMPARE(item.data(Qt::DecorationRole).value<QPixmap>().size(), QSize(64, 32));

    ImageDetailsPanel panel;
    QSignalSpy loaded(&panel, &ImageDetailsPanel::sampleLoaded);
    panel.showSample(index, 0);
    QVERIFY(loaded.wait(10000));
    QCOMPARE(panel.findChild<QLineEdit *>(QStringLiteral("pathValue"))->text(),
             QStringLiteral("c\uFFFD/r\uFFFD\uFFFD.png"));
    QCOMPARE(panel.findChild<QLabel *>(QStringLiteral("sizeValue"))->text(),
             QStringLiteral("200 × 100 px"));
    QCOMPARE(panel.findChild<QLabel *>(QStringLiteral("classValue"))->text(),
             QStringLiteral("c\uFFFD (index 0)"));
}

QTEST_MAIN(TestThumbnailModel)
#include "tst_thumbnailmodel.moc"
