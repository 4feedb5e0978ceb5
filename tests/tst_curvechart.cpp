// The training curves' chart: min/max-per-column decimation never hides a spike and stays within
// two points per pixel column, follows zoom and resize; the bias-corrected moving average has
// TensorBoard's values; CSV and PNG exports hold what was fed.
#include "training/curvechart.h"

#include <QApplication>
#include <QChartView>
#include <QFile>
#include <QImage>
#include <QSignalSpy>
#include <QSlider>
#include <QTemporaryDir>
#include <QTest>
#include <QWheelEvent>

#include <cmath>
#include <limits>

using namespace ifs;

namespace {

/// `count` points of small noise around 1 with one spike of `spike` at `at`.
std::vector<QPointF> noisyWithSpike(int count, int at, double spike)
{
    std::vector<QPointF> points;
    points.reserve(size_t(count));
    for (int i = 0; i < count; ++i) {
        const double y = i == at ? spike : 1.0 + 0.01 * std::sin(i * 0.37);
        points.emplace_back(double(i + 1), y);
    }
    return points;
}

QList<QPointF> toList(const std::vector<QPointF> &points)
{
    return QList<QPointF>(points.cbegin(), points.cend());
}

bool sortedByX(const QList<QPointF> &points)
{
    for (int i = 1; i < points.size(); ++i)
        if (points[i].x() < points[i - 1].x())
            return false;
    return true;
}

} // namespace

class TestCurveChart : public QObject
{
    Q_OBJECT

private Q_SLOTS:
    void decimationKeepsSpikes_data();
    void decimationKeepsSpikes();
    void fewPointsAreKeptAsTheyAre();
    void decimationSkipsNonFinite();
    void chartDrawsSpikeOfHundredThousandPoints();
    void zoomRedecimatesTheVisibleRange();
    void wheelZoomsAndDoubleClickResets();
    void emaBiasCorrection();
    void smoothedSeriesFollowsBetaAndAppends();
    void csvExport();
    void pngExport();
    void removeAndHideSeries();
    void valuesARoundingApartGetARange();
};

void TestCurveChart::decimationKeepsSpikes_data()
{
    QTest::addColumn<int>("count");
    QTest::addColumn<int>("columns");
    QTest::addColumn<int>("at");
    QTest::addColumn<double>("spike");
    QTest::newRow("100k, up, middle") << 100000 << 640 << 54321 << 1000.0;
    QTest::newRow("100k, down") << 100000 << 640 << 777 << -50.0;
    QTest::newRow("first point") << 100000 << 300 << 0 << 99.0;
    QTest::newRow("last point") << 100000 << 300 << 99999 << 99.0;
    QTest::newRow("one column") << 5000 << 1 << 2500 << 7.0;
    QTest::newRow("1M points") << 1000000 << 1200 << 123457 << 42.0;
}

void TestCurveChart::decimationKeepsSpikes()
{
    QFETCH(int, count);
    QFETCH(int, columns);
    QFETCH(int, at);
    QFETCH(double, spike);
    const std::vector<QPointF> points = noisyWithSpike(count, at, spike);
    const QList<QPointF> shown
        = CurveChart::decimateMinMax(points, points.front().x(), points.back().x(), columns);
    QVERIFY(shown.contains(points[size_t(at)]));
    QVERIFY2(shown.size() <= 2 * columns, qPrintable(QString::number(shown.size())));
    QVERIFY(shown.size() >= columns); // every column is drawn
    QVERIFY(sortedByX(shown));
    // The extremes of the whole series survive too.
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (const QPointF &p : points) {
        lo = std::min(lo, p.y());
        hi = std::max(hi, p.y());
    }
    double shownLo = std::numeric_limits<double>::infinity(), shownHi = -shownLo;
    for (const QPointF &p : shown) {
        shownLo = std::min(shownLo, p.y());
        shownHi = std::max(shownHi, p.y());
    }
    QCOMPARE(shownLo, lo);
    QCOMPARE(shownHi, hi);
}

void TestCurveChart::fewPointsAreKeptAsTheyAre()
{
    const std::vector<QPointF> points = noisyWithSpike(300, 10, 5.0);
    QCOMPARE(CurveChart::decimateMinMax(points, 1, 300, 200), toList(points));
    QVERIFY(CurveChart::decimateMinMax({}, 0, 1, 100).isEmpty());
    // A view inside the data keeps one neighbour on each side, so lines reach the edges.
    const QList<QPointF> inside = CurveChart::decimateMinMax(points, 100.5, 120.5, 200);
    QCOMPARE(inside.size(), 22);
    QCOMPARE(inside.first().x(), 100.0);
    QCOMPARE(inside.last().x(), 121.0);
}

void TestCurveChart::decimationSkipsNonFinite()
{
    std::vector<QPointF> points = noisyWithSpike(10000, 5000, 3.0);
    points[100].setY(std::numeric_limits<double>::quiet_NaN());
    points[200].setY(std::numeric_limits<double>::infinity());
    const QList<QPointF> shown = CurveChart::decimateMinMax(points, 1, 10000, 100);
    for (const QPointF &p : shown)
        QVERIFY(std::isfinite(p.y()));
    QVERIFY(shown.contains(points[5000]));
}

void TestCurveChart::chartDrawsSpikeOfHundredThousandPoints()
{
    CurveChart chart(QStringLiteral("Training loss"), QStringLiteral("step"),
                     QStringLiteral("loss"));
    chart.resize(900, 400);
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    const int id = chart.addSeries(QStringLiteral("per batch"), {});
    const std::vector<QPointF> points = noisyWithSpike(100000, 61234, 250.0);
    // Fed in chunks, as the training workspace does every 100 ms.
    for (size_t i = 0; i < points.size(); i += 997)
        chart.appendPoints(id,
                           toList(std::vector<QPointF>(
                               points.begin() + qsizetype(i),
                               points.begin() + qsizetype(std::min(points.size(), i + 997)))));
    chart.refresh();
    QCOMPARE(chart.points(id).size(), points.size());
    const int width = chart.plotColumns();
    QVERIFY(width > 300 && width < 900);
    const QList<QPointF> shown = chart.shownPoints(id);
    QVERIFY(shown.contains(points[61234]));
    QVERIFY2(shown.size() <= 2 * width,
             qPrintable(QStringLiteral("%1 points for %2 columns").arg(shown.size()).arg(width)));

    // A narrower chart: fewer columns, the spike still there.
    chart.resize(500, 400);
    // The new size reaches the plot through posted layout events: wait for it, not for a time.
    QTRY_VERIFY([&] {
        chart.refresh();
        return chart.plotColumns() < width;
    }());
    QVERIFY(chart.shownPoints(id).contains(points[61234]));
    QVERIFY(chart.shownPoints(id).size() <= 2 * chart.plotColumns());
}

void TestCurveChart::zoomRedecimatesTheVisibleRange()
{
    CurveChart chart(QStringLiteral("c"), QStringLiteral("x"), QStringLiteral("y"));
    chart.resize(800, 300);
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    const int id = chart.addSeries(QStringLiteral("s"), {});
    const std::vector<QPointF> points = noisyWithSpike(100000, 50000, 9.0);
    chart.setPoints(id, toList(points));
    chart.refresh();
    QVERIFY(!chart.isZoomed());
    QCOMPARE(chart.viewMinX(), 1.0);
    QCOMPARE(chart.viewMaxX(), 100000.0);

    QSignalSpy zoomed(&chart, &CurveChart::zoomChanged);
    chart.zoomX(1000, 1100); // 101 points: all drawn, plus a neighbour on each side
    QVERIFY(chart.isZoomed());
    QCOMPARE(zoomed.count(), 1);
    QCOMPARE(chart.shownPoints(id).size(), 103);
    QVERIFY(!chart.shownPoints(id).contains(points[50000]));

    chart.zoomX(40000, 60000);
    QVERIFY(chart.shownPoints(id).contains(points[50000]));
    QVERIFY(chart.shownPoints(id).size() <= 2 * chart.plotColumns() + 2);

    // Appending while zoomed keeps the view.
    chart.appendPoint(id, 100001, 1.0);
    chart.refresh();
    QCOMPARE(chart.viewMaxX(), 60000.0);

    chart.resetZoom();
    QVERIFY(!chart.isZoomed());
    QCOMPARE(chart.viewMaxX(), 100001.0);
    QCOMPARE(zoomed.count(), 2);
}

void TestCurveChart::wheelZoomsAndDoubleClickResets()
{
    CurveChart chart(QStringLiteral("c"), QStringLiteral("x"), QStringLiteral("y"));
    chart.resize(800, 300);
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    const int id = chart.addSeries(QStringLiteral("s"), {});
    chart.setPoints(id, toList(noisyWithSpike(1000, 10, 2.0)));
    chart.refresh();
    QWidget *viewport = chart.chartView()->viewport();
    const QPoint centre = viewport->rect().center();
    QWheelEvent wheel(centre, viewport->mapToGlobal(centre), QPoint(), QPoint(0, 240), Qt::NoButton,
                      Qt::NoModifier, Qt::NoScrollPhase, false);
    QApplication::sendEvent(viewport, &wheel);
    QVERIFY(chart.isZoomed());
    const double span = chart.viewMaxX() - chart.viewMinX();
    QVERIFY2(span < 999 * 0.8, qPrintable(QString::number(span)));
    QVERIFY(chart.viewMinX() > 1.0 && chart.viewMaxX() < 1000.0);

    QTest::mouseDClick(viewport, Qt::LeftButton, {}, centre);
    QVERIFY(!chart.isZoomed());
    QCOMPARE(chart.viewMinX(), 1.0);
    QCOMPARE(chart.viewMaxX(), 1000.0);
}

void TestCurveChart::emaBiasCorrection()
{
    // Hand-computed: ema_t = β ema_{t−1} + (1 − β) y_t, shown as ema_t / (1 − β^t).
    const std::vector<QPointF> points{{1, 1.0}, {2, 2.0}, {3, 3.0}};
    const std::vector<QPointF> half = CurveChart::biasCorrectedEma(points, 0.5);
    QCOMPARE(half.size(), size_t(3));
    QCOMPARE(half[0].y(), 1.0); // 0.5 / 0.5
    QVERIFY(qFuzzyCompare(half[1].y(), 1.25 / 0.75));
    QVERIFY(qFuzzyCompare(half[2].y(), 2.125 / 0.875));
    QCOMPARE(half[2].x(), 3.0);

    // A constant is its own average from the first point on: that is what the correction is for.
    std::vector<QPointF> constant;
    for (int i = 1; i <= 50; ++i)
        constant.emplace_back(i, 5.0);
    for (double beta : {0.0, 0.6, 0.9, 0.99, 0.999})
        for (const QPointF &p : CurveChart::biasCorrectedEma(constant, beta))
            QVERIFY2(qFuzzyCompare(p.y(), 5.0), qPrintable(QString::number(beta)));

    // β = 0: the raw values.
    const std::vector<QPointF> noisy = noisyWithSpike(100, 40, 3.0);
    const std::vector<QPointF> none = CurveChart::biasCorrectedEma(noisy, 0.0);
    for (size_t i = 0; i < noisy.size(); ++i)
        QCOMPARE(none[i].y(), noisy[i].y());

    // Non-finite losses are skipped and do not count in t.
    const std::vector<QPointF> gaps{
        {1, 1.0}, {2, std::numeric_limits<double>::quiet_NaN()}, {3, 2.0}};
    const std::vector<QPointF> skipped = CurveChart::biasCorrectedEma(gaps, 0.5);
    QCOMPARE(skipped.size(), size_t(2));
    QCOMPARE(skipped[1].x(), 3.0);
    QVERIFY(qFuzzyCompare(skipped[1].y(), 1.25 / 0.75));
}

void TestCurveChart::smoothedSeriesFollowsBetaAndAppends()
{
    CurveChart chart(QStringLiteral("loss"), QStringLiteral("step"), QStringLiteral("loss"));
    const int raw = chart.addSeries(QStringLiteral("per batch"), {});
    const int smooth = chart.addSmoothedSeries(raw, QStringLiteral("smoothed"), {});
    chart.setSmoothingControlVisible(true);
    chart.setSmoothing(0.9);
    const std::vector<QPointF> points = noisyWithSpike(500, 100, 4.0);
    for (size_t i = 0; i < points.size(); i += 7)
        chart.appendPoints(raw,
                           toList(std::vector<QPointF>(
                               points.begin() + qsizetype(i),
                               points.begin() + qsizetype(std::min(points.size(), i + 7)))));
    // Incremental = computed in one go.
    const std::vector<QPointF> expected = CurveChart::biasCorrectedEma(points, 0.9);
    QCOMPARE(chart.points(smooth).size(), expected.size());
    for (size_t i = 0; i < expected.size(); ++i)
        QVERIFY(qFuzzyCompare(chart.points(smooth)[i].y(), expected[i].y()));

    // The slider changes β and recomputes.
    QSignalSpy changed(&chart, &CurveChart::smoothingChanged);
    auto *slider = chart.findChild<QSlider *>(QStringLiteral("smoothingSlider"));
    QVERIFY(slider);
    slider->setValue(500);
    QCOMPARE(changed.count(), 1);
    QCOMPARE(chart.smoothing(), 0.5);
    const std::vector<QPointF> half = CurveChart::biasCorrectedEma(points, 0.5);
    for (size_t i = 0; i < half.size(); ++i)
        QVERIFY(qFuzzyCompare(chart.points(smooth)[i].y(), half[i].y()));
    chart.setSmoothing(5.0); // clamped
    QCOMPARE(chart.smoothing(), 0.999);
    QCOMPARE(slider->value(), 999);

    // Replacing the source recomputes from scratch.
    chart.setPoints(raw, {QPointF(1, 2.0), QPointF(2, 2.0)});
    QCOMPARE(chart.points(smooth).size(), size_t(2));
    QVERIFY(qFuzzyCompare(chart.points(smooth)[1].y(), 2.0));
}

void TestCurveChart::csvExport()
{
    CurveChart chart(QStringLiteral("Accuracy"), QStringLiteral("epoch"), QStringLiteral("%"));
    const int train = chart.addSeries(QStringLiteral("train"), {});
    const int val = chart.addSeries(QStringLiteral("val, held out"), {});
    chart.appendPoint(train, 1, 50.5);
    chart.appendPoint(train, 2, 71.25);
    chart.appendPoint(val, 1, 48.0);
    chart.appendPoint(val, 2, 0.1 + 0.2);
    const QString expected = QStringLiteral("series,x,y\n"
                                            "train,1,50.5\n"
                                            "train,2,71.25\n"
                                            "\"val, held out\",1,48\n"
                                            "\"val, held out\",2,0.3\n");
    QCOMPARE(chart.toCsv(), expected);
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("accuracy.csv"));
    const Status status = chart.exportCsv(path);
    QVERIFY2(status.ok(), qPrintable(status.errorMessage()));
    QFile file(path);
    QVERIFY(file.open(QIODevice::ReadOnly));
    QCOMPARE(QString::fromUtf8(file.readAll()), expected);
    // A folder that does not exist: an error naming the file.
    const Status bad = chart.exportCsv(dir.filePath(QStringLiteral("no/such/dir/a.csv")));
    QVERIFY(!bad.ok());
    QVERIFY(bad.errorMessage().contains(QStringLiteral("a.csv")));

    // Every raw point, not the decimated ones.
    CurveChart big(QStringLiteral("loss"), QStringLiteral("step"), QStringLiteral("loss"));
    const int id = big.addSeries(QStringLiteral("loss"), {});
    big.setPoints(id, toList(noisyWithSpike(20000, 3, 2.0)));
    big.refresh();
    QCOMPARE(big.toCsv().count(u'\n'), 20001);
}

void TestCurveChart::pngExport()
{
    CurveChart chart(QStringLiteral("Learning rate"), QStringLiteral("step"), QStringLiteral("lr"));
    chart.resize(600, 300);
    chart.show();
    QVERIFY(QTest::qWaitForWindowExposed(&chart));
    const int id = chart.addSeries(QStringLiteral("lr"), {});
    chart.setPoints(id, toList(noisyWithSpike(100, 50, 2.0)));
    QTemporaryDir dir;
    const QString path = dir.filePath(QStringLiteral("lr.png"));
    QVERIFY(chart.exportPng(path));
    const QImage image(path);
    QVERIFY(!image.isNull());
    QCOMPARE(image.size() / image.devicePixelRatio(), chart.size());
}

void TestCurveChart::removeAndHideSeries()
{
    CurveChart chart(QStringLiteral("c"), QStringLiteral("x"), QStringLiteral("y"));
    const int a = chart.addSeries(QStringLiteral("a"), {});
    const int b = chart.addSmoothedSeries(a, QStringLiteral("a smoothed"), {});
    const int c = chart.addSeries(QStringLiteral("c"), {});
    QCOMPARE(chart.seriesIds(), (QList<int>{a, b, c}));
    chart.setPoints(a, {QPointF(1, 1), QPointF(2, 3)});
    chart.setPoints(c, {QPointF(1, 100), QPointF(2, 200)});
    chart.setSeriesVisible(c, false);
    chart.refresh();
    QVERIFY(chart.shownPoints(c).isEmpty());
    // A hidden series keeps its points and still exports.
    QCOMPARE(chart.points(c).size(), size_t(2));
    QVERIFY(chart.toCsv().contains(QStringLiteral("c,2,200")));
    chart.removeSeries(a); // and the series smoothing it
    QCOMPARE(chart.seriesIds(), (QList<int>{c}));
    QVERIFY(!chart.hasSeries(b));
    QCOMPARE(chart.seriesName(c), QStringLiteral("c"));
    chart.clearPoints();
    QCOMPARE(chart.points(c).size(), size_t(0));
}

/// A first step's loss and its smoothed copy can differ in the last bit. The range they made
/// (1e-16 wide around 2.69) had a tick interval that adding to 2.69 does not change, and laying
/// out the axis never ended (the Training workspace hung on a one-step resnet18 run).
void TestCurveChart::valuesARoundingApartGetARange()
{
    CurveChart chart(QStringLiteral("loss"), QStringLiteral("step"), QStringLiteral("loss"));
    chart.resize(600, 400);
    chart.show();
    const int a = chart.addSeries(QStringLiteral("a"), {});
    const int b = chart.addSeries(QStringLiteral("b"), {});
    const double loss = 2.6886587142944336;
    chart.setPoints(a, {QPointF(1, loss)});
    chart.setPoints(b, {QPointF(1, std::nextafter(loss, 3.0))});
    chart.refresh();
    const QImage image = chart.grab().toImage(); // lays the axes out: this hung
    QVERIFY(!image.isNull());
    // The same for a zoom far into one value.
    chart.zoomX(1.0, std::nextafter(1.0, 2.0));
    chart.refresh();
    QVERIFY(!chart.grab().toImage().isNull());
}

QTEST_MAIN(TestCurveChart)
#include "tst_curvechart.moc"
