#include "training/curvechart.h"

#include "training/curvechartview.h"

#include <QChart>
#include <QChartView>
#include <QDir>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QLegend>
#include <QLegendMarker>
#include <QLineSeries>
#include <QMenu>
#include <QMessageBox>
#include <QSaveFile>
#include <QSlider>
#include <QToolButton>
#include <QVBoxLayout>
#include <QValueAxis>

#include <algorithm>
#include <cmath>
#include <limits>

namespace ifs {

namespace {

constexpr int kRefreshMs = 50;
constexpr int kSliderSteps = 1000; // β = value / 1000, 0 … 0.999

bool isFinitePoint(const QPointF &p)
{
    return std::isfinite(p.x()) && std::isfinite(p.y());
}

/// 1, 2 or 5 × 10^k, about a fifth of `span`.
double niceInterval(double span, bool integer)
{
    if (!(span > 0) || !std::isfinite(span))
        return 1.0;
    const double raw = span / 5.0;
    const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
    const double norm = raw / magnitude;
    const double step = (norm < 1.5 ? 1.0 : norm < 3.0 ? 2.0 : norm < 7.0 ? 5.0 : 10.0) * magnitude;
    return integer ? std::max(1.0, std::round(step)) : step;
}

QString csvField(const QString &text)
{
    if (!text.contains(u',') && !text.contains(u'"') && !text.contains(u'\n'))
        return text;
    QString quoted = text;
    quoted.replace(QStringLiteral("\""), QStringLiteral("\"\""));
    return u'"' + quoted + u'"';
}

QString fileNameOf(const QString &title)
{
    QString name = title.toLower();
    for (QChar &c : name)
        if (!c.isLetterOrNumber())
            c = u'-';
    while (name.contains(QStringLiteral("--")))
        name.replace(QStringLiteral("--"), QStringLiteral("-"));
    return name.isEmpty() ? QStringLiteral("chart") : name;
}

} // namespace

struct CurveChart::Series
{
    int id = -1;
    QString name;
    SeriesStyle style;
    QLineSeries *line = nullptr; // null while hidden
    std::vector<QPointF> points;
    int source = -1; // a smoothed series: the id it follows
    double ema = 0.0;
    qint64 t = 0;
    bool visible = true;
    QList<QPointF> shown;
};

CurveChart::CurveChart(const QString &title, const QString &xTitle, const QString &yTitle,
                       QWidget *parent)
    : QWidget(parent)
    , m_title(title)
    , m_chart(new QChart)
    , m_axisX(new QValueAxis(this))
    , m_axisY(new QValueAxis(this))
{
    setObjectName(QStringLiteral("curveChart"));
    m_chart->setMargins(QMargins(2, 2, 6, 2));
    m_chart->setBackgroundRoundness(0);
    m_chart->setAnimationOptions(QChart::NoAnimation);
    m_chart->legend()->setAlignment(Qt::AlignTop);
    QFont small = m_chart->legend()->font();
    small.setPointSizeF(small.pointSizeF() * 0.85);
    m_chart->legend()->setFont(small);
    m_chart->addAxis(m_axisX, Qt::AlignBottom);
    m_chart->addAxis(m_axisY, Qt::AlignLeft);
    for (QValueAxis *axis : {m_axisX, m_axisY}) {
        axis->setLabelsFont(small);
        QFont titleFont = small;
        titleFont.setBold(false);
        axis->setTitleFont(titleFont);
        axis->setTickType(QValueAxis::TicksDynamic);
        axis->setTickAnchor(0.0);
        axis->setMinorTickCount(0);
    }
    m_axisX->setTitleText(xTitle);
    m_axisY->setTitleText(yTitle);
    m_view = new CurveChartView(m_chart, this);
    m_view->setMinimumHeight(150);

    m_titleLabel = new QLabel(title, this);
    QFont bold = m_titleLabel->font();
    bold.setBold(true);
    m_titleLabel->setFont(bold);

    m_smoothingBox = new QWidget(this);
    m_smoothingSlider = new QSlider(Qt::Horizontal, m_smoothingBox);
    m_smoothingSlider->setObjectName(QStringLiteral("smoothingSlider"));
    m_smoothingSlider->setRange(0, kSliderSteps - 1);
    m_smoothingSlider->setValue(int(std::lround(m_beta * kSliderSteps)));
    m_smoothingSlider->setMaximumWidth(140);
    m_smoothingSlider->setToolTip(tr("Smoothing β of the bias-corrected moving average "
                                     "(0: none)"));
    m_smoothingLabel = new QLabel(m_smoothingBox);
    m_smoothingLabel->setMinimumWidth(
        m_smoothingLabel->fontMetrics().horizontalAdvance(QStringLiteral("Smoothing 0.000")));
    auto *smoothingLayout = new QHBoxLayout(m_smoothingBox);
    smoothingLayout->setContentsMargins(0, 0, 0, 0);
    smoothingLayout->addWidget(m_smoothingLabel);
    smoothingLayout->addWidget(m_smoothingSlider);
    m_smoothingBox->hide();
    updateSmoothingLabel();
    connect(m_smoothingSlider, &QSlider::valueChanged, this,
            [this](int value) { setSmoothing(value / double(kSliderSteps)); });

    m_menu = new QMenu(this);
    QAction *reset = m_menu->addAction(tr("Reset Zoom"), this, &CurveChart::resetZoom);
    reset->setToolTip(tr("Follow the data again (or double-click the chart)"));
    m_menu->addSeparator();
    m_menu->addAction(tr("Export PNG…"), this, &CurveChart::exportPngInteractive);
    m_menu->addAction(tr("Export CSV…"), this, &CurveChart::exportCsvInteractive);

    auto *resetButton = new QToolButton(this);
    resetButton->setObjectName(QStringLiteral("resetZoomButton"));
    resetButton->setText(tr("Reset Zoom"));
    resetButton->setAutoRaise(true);
    resetButton->hide();
    connect(resetButton, &QToolButton::clicked, this, &CurveChart::resetZoom);
    connect(this, &CurveChart::zoomChanged, resetButton, &QWidget::setVisible);

    m_menuButton = new QToolButton(this);
    m_menuButton->setText(QStringLiteral("⋯"));
    m_menuButton->setToolTip(tr("Export, overlays, zoom (also the chart's context menu). "
                                "Wheel: zoom; drag: zoom into a box; Shift+drag or middle drag: "
                                "pan; double-click: reset."));
    m_menuButton->setPopupMode(QToolButton::InstantPopup);
    m_menuButton->setAutoRaise(true);
    m_menuButton->setMenu(m_menu);

    auto *bar = new QHBoxLayout;
    bar->setContentsMargins(6, 2, 2, 0);
    bar->addWidget(m_titleLabel);
    bar->addStretch(1);
    bar->addWidget(m_smoothingBox);
    bar->addWidget(resetButton);
    bar->addWidget(m_menuButton);
    auto *layout = new QVBoxLayout(this);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(0);
    layout->addLayout(bar);
    layout->addWidget(m_view, 1);

    m_refreshTimer.setSingleShot(true);
    m_refreshTimer.setInterval(kRefreshMs);
    connect(&m_refreshTimer, &QTimer::timeout, this, &CurveChart::refresh);
    // A new width means other columns: decimate again.
    connect(m_chart, &QChart::plotAreaChanged, this, [this](const QRectF &plot) {
        if (std::max(1, int(std::lround(plot.width()))) != m_columns)
            scheduleRefresh();
    });
    refresh();
}

CurveChart::~CurveChart()
{
    for (Series *series : m_series)
        delete series;
}

CurveChart::Series *CurveChart::find(int id)
{
    for (Series *series : m_series)
        if (series->id == id)
            return series;
    return nullptr;
}

const CurveChart::Series *CurveChart::find(int id) const
{
    for (const Series *series : m_series)
        if (series->id == id)
            return series;
    return nullptr;
}

int CurveChart::addSeries(const QString &name, const SeriesStyle &style)
{
    auto *series = new Series;
    series->id = m_nextId++;
    series->name = name;
    series->style = style;
    m_series.push_back(series);
    setSeriesVisible(series->id, true);
    return series->id;
}

int CurveChart::addSmoothedSeries(int source, const QString &name, const SeriesStyle &style)
{
    const int id = addSeries(name, style);
    Series *series = find(id);
    series->source = source;
    recomputeSmoothed(*series);
    return id;
}

void CurveChart::removeSeries(int id)
{
    QList<int> doomed{id};
    for (const Series *series : m_series)
        if (series->source == id)
            doomed.append(series->id);
    for (int victim : doomed) {
        Series *series = find(victim);
        if (!series)
            continue;
        if (series->line) {
            m_chart->removeSeries(series->line);
            delete series->line;
        }
        m_series.erase(std::find(m_series.begin(), m_series.end(), series));
        delete series;
    }
    scheduleRefresh();
}

void CurveChart::setSeriesVisible(int id, bool visible)
{
    Series *series = find(id);
    if (!series)
        return;
    series->visible = visible;
    if (visible && !series->line) {
        series->line = new QLineSeries;
        series->line->setName(series->name);
        QPen pen(series->style.color);
        QColor color = series->style.color;
        color.setAlphaF(float(std::clamp(series->style.opacity, 0.0, 1.0)));
        pen.setColor(color);
        pen.setWidthF(series->style.width);
        pen.setStyle(series->style.pen);
        pen.setCapStyle(Qt::FlatCap);
        series->line->setPen(pen);
        series->line->setColor(color);
        series->line->setMarkerSize(std::max(5.0, series->style.width * 3.0));
        m_chart->addSeries(series->line);
        series->line->attachAxis(m_axisX);
        series->line->attachAxis(m_axisY);
    } else if (!visible && series->line) {
        m_chart->removeSeries(series->line);
        delete series->line;
        series->line = nullptr;
        series->shown.clear();
    }
    scheduleRefresh();
}

bool CurveChart::hasSeries(int id) const
{
    return find(id) != nullptr;
}

QList<int> CurveChart::seriesIds() const
{
    QList<int> ids;
    for (const Series *series : m_series)
        ids.append(series->id);
    return ids;
}

QString CurveChart::seriesName(int id) const
{
    const Series *series = find(id);
    return series ? series->name : QString();
}

void CurveChart::appendPoint(int id, double x, double y)
{
    appendPoints(id, {QPointF(x, y)});
}

void CurveChart::appendPoints(int id, const QList<QPointF> &points)
{
    Series *series = find(id);
    if (!series || points.isEmpty())
        return;
    bool sorted = true;
    for (const QPointF &point : points) {
        if (!series->points.empty() && point.x() < series->points.back().x())
            sorted = false;
        series->points.push_back(point);
    }
    if (!sorted) {
        std::stable_sort(series->points.begin(), series->points.end(),
                         [](const QPointF &a, const QPointF &b) { return a.x() < b.x(); });
    }
    for (Series *smoothed : m_series) {
        if (smoothed->source != id)
            continue;
        if (sorted) {
            for (const QPointF &point : points)
                appendSmoothed(*smoothed, point);
        } else {
            recomputeSmoothed(*smoothed);
        }
    }
    scheduleRefresh();
}

void CurveChart::setPoints(int id, const QList<QPointF> &points)
{
    Series *series = find(id);
    if (!series)
        return;
    series->points.clear();
    for (Series *smoothed : m_series)
        if (smoothed->source == id)
            recomputeSmoothed(*smoothed);
    appendPoints(id, points);
    scheduleRefresh();
}

void CurveChart::clearPoints()
{
    for (Series *series : m_series) {
        series->points.clear();
        series->ema = 0.0;
        series->t = 0;
        series->shown.clear();
        if (series->line)
            series->line->clear();
    }
    scheduleRefresh();
}

const std::vector<QPointF> &CurveChart::points(int id) const
{
    static const std::vector<QPointF> none;
    const Series *series = find(id);
    return series ? series->points : none;
}

QList<QPointF> CurveChart::shownPoints(int id) const
{
    const Series *series = find(id);
    return series ? series->shown : QList<QPointF>();
}

void CurveChart::appendSmoothed(Series &smoothed, const QPointF &point)
{
    if (!isFinitePoint(point))
        return;
    smoothed.t += 1;
    smoothed.ema = m_beta * smoothed.ema + (1.0 - m_beta) * point.y();
    const double correction = 1.0 - std::pow(m_beta, double(smoothed.t));
    smoothed.points.emplace_back(point.x(),
                                 correction > 0.0 ? smoothed.ema / correction : point.y());
}

void CurveChart::recomputeSmoothed(Series &smoothed)
{
    smoothed.points.clear();
    smoothed.ema = 0.0;
    smoothed.t = 0;
    if (const Series *source = find(smoothed.source))
        for (const QPointF &point : source->points)
            appendSmoothed(smoothed, point);
}

void CurveChart::setSmoothing(double beta)
{
    beta = std::clamp(beta, 0.0, (kSliderSteps - 1) / double(kSliderSteps));
    if (beta == m_beta)
        return;
    m_beta = beta;
    {
        const QSignalBlocker blocker(m_smoothingSlider);
        m_smoothingSlider->setValue(int(std::lround(beta * kSliderSteps)));
    }
    updateSmoothingLabel();
    for (Series *series : m_series)
        if (series->source >= 0)
            recomputeSmoothed(*series);
    scheduleRefresh();
    Q_EMIT smoothingChanged(beta);
}

void CurveChart::setSmoothingControlVisible(bool visible)
{
    m_smoothingBox->setVisible(visible);
}

void CurveChart::updateSmoothingLabel()
{
    m_smoothingLabel->setText(tr("Smoothing %1").arg(m_beta, 0, 'f', 3));
}

void CurveChart::setYLabelFormat(const QString &format)
{
    m_yFormat = format;
    updateTicks();
}

void CurveChart::setXIntegerTicks(bool integer)
{
    m_xIntegerTicks = integer;
    scheduleRefresh();
}

void CurveChart::resetZoom()
{
    const bool was = isZoomed();
    m_xAuto = m_yAuto = true;
    refresh();
    if (was)
        Q_EMIT zoomChanged(false);
}

void CurveChart::zoomX(double x0, double x1)
{
    if (!(x1 > x0) || !std::isfinite(x0) || !std::isfinite(x1))
        return;
    setRanges(x0, x1, m_y0, m_y1, false, m_yAuto);
}

void CurveChart::setRanges(double x0, double x1, double y0, double y1, bool xAuto, bool yAuto)
{
    const bool was = isZoomed();
    m_xAuto = xAuto;
    m_yAuto = yAuto;
    if (!xAuto) {
        m_x0 = x0;
        m_x1 = x1;
    }
    if (!yAuto && y1 > y0) {
        m_y0 = y0;
        m_y1 = y1;
    }
    refresh();
    if (was != isZoomed())
        Q_EMIT zoomChanged(isZoomed());
}

void CurveChart::panBy(double dx, double dy)
{
    const bool panY = !m_yAuto && dy != 0.0;
    setRanges(m_x0 + dx, m_x1 + dx, m_y0 + (panY ? dy : 0.0), m_y1 + (panY ? dy : 0.0), false,
              m_yAuto);
}

double CurveChart::viewMinX() const
{
    return m_x0;
}

double CurveChart::viewMaxX() const
{
    return m_x1;
}

int CurveChart::plotColumns() const
{
    return std::max(1, int(std::lround(m_chart->plotArea().width())));
}

bool CurveChart::sparse() const
{
    qsizetype most = 0;
    for (const Series *series : m_series)
        if (series->visible)
            most = std::max(most, qsizetype(series->points.size()));
    return most > 0 && most * 12 < plotColumns();
}

void CurveChart::scheduleRefresh()
{
    if (!m_refreshTimer.isActive())
        m_refreshTimer.start();
}

void CurveChart::refresh()
{
    m_refreshTimer.stop();
    if (m_xAuto) {
        double lo = std::numeric_limits<double>::infinity();
        double hi = -lo;
        for (const Series *series : m_series) {
            if (!series->visible)
                continue;
            for (const QPointF &p : series->points) {
                if (std::isfinite(p.x())) {
                    lo = std::min(lo, p.x());
                    break;
                }
            }
            for (auto it = series->points.rbegin(); it != series->points.rend(); ++it) {
                if (std::isfinite(it->x())) {
                    hi = std::max(hi, it->x());
                    break;
                }
            }
        }
        if (!std::isfinite(lo)) {
            lo = 0.0;
            hi = 1.0;
        } else if (hi <= lo) {
            lo -= m_xIntegerTicks ? 1.0 : 0.5;
            hi += m_xIntegerTicks ? 1.0 : 0.5;
        } else if (sparse()) {
            // Room for the markers at the ends.
            const double pad = (hi - lo) * 0.03;
            lo -= pad;
            hi += pad;
        }
        m_x0 = lo;
        m_x1 = hi;
    }

    const int columns = plotColumns();
    m_columns = columns;
    double ylo = std::numeric_limits<double>::infinity();
    double yhi = -ylo;
    for (Series *series : m_series) {
        if (!series->visible || !series->line)
            continue;
        series->shown = decimateMinMax(series->points, m_x0, m_x1, columns);
        // Sparse series (epochs) get markers: a single point is otherwise invisible.
        series->line->setPointsVisible(series->shown.size() * 12 < columns);
        series->line->replace(series->shown);
        for (const QPointF &p : std::as_const(series->shown)) {
            if (p.x() < m_x0 || p.x() > m_x1)
                continue;
            ylo = std::min(ylo, p.y());
            yhi = std::max(yhi, p.y());
        }
    }
    if (m_yAuto) {
        if (!std::isfinite(ylo)) {
            ylo = 0.0;
            yhi = 1.0;
        }
        // A flat curve (or two values a rounding apart, as a loss and its smoothed copy can be)
        // gets a span of its own: a range of 1e-16 around 2.69 has ticks that no double can
        // step through.
        const double scale = std::max(std::abs(ylo), std::abs(yhi));
        double pad = (yhi - ylo) * 0.05;
        if (!(pad > scale * 1e-6))
            pad = std::max(scale * 0.1, 1e-6);
        m_y0 = ylo - pad;
        m_y1 = yhi + pad;
        // Do not invent negative values for quantities that cannot be negative.
        if (ylo >= 0.0 && m_y0 < 0.0)
            m_y0 = 0.0;
    }
    updateTicks();
    // A single curve needs no legend: the chart's title names it.
    const auto shown = std::count_if(m_series.cbegin(), m_series.cend(),
                                     [](const Series *series) { return series->line; });
    m_chart->legend()->setVisible(shown > 1);
}

void CurveChart::updateTicks()
{
    // Range and interval change together: with dynamic ticks in between, a new range under the
    // old interval could ask for a million ticks.
    const auto apply = [](QValueAxis *axis, double lo, double hi, double interval) {
        if (axis->min() == lo && axis->max() == hi && axis->tickInterval() == interval)
            return;
        axis->setTickType(QValueAxis::TicksFixed);
        axis->setRange(lo, hi);
        // Dynamic ticks only where doubles can count them: an interval lost in the rounding of
        // the range's values (a zoom far into one value) would never reach the end.
        const double scale = std::max(std::abs(lo), std::abs(hi));
        if (interval > scale * 1e-9 && (hi - lo) / interval < 1000.0) {
            axis->setTickInterval(interval);
            axis->setTickType(QValueAxis::TicksDynamic);
        } else {
            axis->setTickCount(2);
        }
    };
    const double xInterval = niceInterval(m_x1 - m_x0, m_xIntegerTicks);
    const double yInterval = niceInterval(m_y1 - m_y0, false);
    apply(m_axisX, m_x0, m_x1, xInterval);
    apply(m_axisY, m_y0, m_y1, yInterval);
    // As many decimals as the ticks need: 0.1 0.08 0.06, 2.295 2.3 2.305, 200 400.
    const auto format = [](double interval) {
        const int decimals = std::clamp(int(-std::floor(std::log10(interval) + 1e-9)), 0, 8);
        return QStringLiteral("%.%1f").arg(decimals);
    };
    m_axisX->setLabelFormat(format(xInterval));
    m_axisY->setLabelFormat(m_yFormat.isEmpty() ? format(yInterval) : m_yFormat);
}

QList<QPointF> CurveChart::decimateMinMax(const std::vector<QPointF> &points, double x0, double x1,
                                          int columns)
{
    QList<QPointF> out;
    if (points.empty())
        return out;
    columns = std::max(1, columns);
    using It = std::vector<QPointF>::const_iterator;
    const It first = std::lower_bound(points.cbegin(), points.cend(), x0,
                                      [](const QPointF &p, double x) { return p.x() < x; });
    const It last = std::upper_bound(points.cbegin(), points.cend(), x1,
                                     [](double x, const QPointF &p) { return x < p.x(); });
    // The nearest finite point on each side, so that lines run to the plot's edges.
    for (It it = first; it != points.cbegin();) {
        --it;
        if (isFinitePoint(*it)) {
            out.append(*it);
            break;
        }
    }
    const qsizetype inside = last - first;
    if (inside <= 2 * qsizetype(columns)) {
        for (It it = first; it != last; ++it)
            if (isFinitePoint(*it))
                out.append(*it);
    } else {
        const double span = x1 - x0;
        int column = -1;
        It lo = last, hi = last;
        auto flush = [&] {
            if (lo == last)
                return;
            if (lo == hi) {
                out.append(*lo);
            } else if (lo < hi) {
                out.append(*lo);
                out.append(*hi);
            } else {
                out.append(*hi);
                out.append(*lo);
            }
        };
        for (It it = first; it != last; ++it) {
            if (!isFinitePoint(*it))
                continue;
            int c = span > 0.0 ? int((it->x() - x0) / span * columns) : 0;
            c = std::clamp(c, 0, columns - 1);
            if (c != column) {
                flush();
                column = c;
                lo = hi = it;
                continue;
            }
            if (it->y() < lo->y())
                lo = it;
            if (it->y() > hi->y())
                hi = it;
        }
        flush();
    }
    for (It it = last; it != points.cend(); ++it) {
        if (isFinitePoint(*it)) {
            out.append(*it);
            break;
        }
    }
    return out;
}

std::vector<QPointF> CurveChart::biasCorrectedEma(const std::vector<QPointF> &points, double beta)
{
    std::vector<QPointF> out;
    out.reserve(points.size());
    double ema = 0.0;
    qint64 t = 0;
    for (const QPointF &point : points) {
        if (!isFinitePoint(point))
            continue;
        t += 1;
        ema = beta * ema + (1.0 - beta) * point.y();
        const double correction = 1.0 - std::pow(beta, double(t));
        out.emplace_back(point.x(), correction > 0.0 ? ema / correction : point.y());
    }
    return out;
}

QString CurveChart::toCsv() const
{
    QString csv = QStringLiteral("series,x,y\n");
    for (const Series *series : m_series) {
        const QString name = csvField(series->name);
        for (const QPointF &p : series->points) {
            csv += name + u',' + QString::number(p.x(), 'g', 10) + u','
                + QString::number(p.y(), 'g', 10) + u'\n';
        }
    }
    return csv;
}

Status CurveChart::exportCsv(const QString &path) const
{
    QSaveFile file(path);
    if (!file.open(QIODevice::WriteOnly | QIODevice::Text))
        return Error{
            tr("Cannot write “%1”: %2").arg(QDir::toNativeSeparators(path), file.errorString())};
    file.write(toCsv().toUtf8());
    if (!file.commit())
        return Error{
            tr("Cannot write “%1”: %2").arg(QDir::toNativeSeparators(path), file.errorString())};
    return success();
}

bool CurveChart::exportPng(const QString &path)
{
    refresh();
    return grab().save(path, "PNG");
}

void CurveChart::exportPngInteractive()
{
    const QString start = (m_exportFolder.isEmpty() ? QDir::homePath() : m_exportFolder) + u'/'
        + fileNameOf(m_title) + QStringLiteral(".png");
    const QString path = QFileDialog::getSaveFileName(this, tr("Export Chart as PNG"), start,
                                                      tr("PNG images (*.png)"));
    if (path.isEmpty())
        return;
    if (!exportPng(path))
        QMessageBox::warning(this, tr("Export PNG"),
                             tr("Cannot write “%1”.").arg(QDir::toNativeSeparators(path)));
}

void CurveChart::exportCsvInteractive()
{
    const QString start = (m_exportFolder.isEmpty() ? QDir::homePath() : m_exportFolder) + u'/'
        + fileNameOf(m_title) + QStringLiteral(".csv");
    const QString path = QFileDialog::getSaveFileName(this, tr("Export Chart Data as CSV"), start,
                                                      tr("CSV files (*.csv)"));
    if (path.isEmpty())
        return;
    const Status status = exportCsv(path);
    if (!status)
        QMessageBox::warning(this, tr("Export CSV"), status.errorMessage());
}

} // namespace ifs
