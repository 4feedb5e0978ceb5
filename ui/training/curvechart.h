#pragma once

#include "base/result.h"

#include <QColor>
#include <QList>
#include <QPointF>
#include <QString>
#include <QTimer>
#include <QWidget>

#include <vector>

class QChart;
class QChartView;
class QLabel;
class QLineSeries;
class QMenu;
class QSlider;
class QToolButton;
class QValueAxis;

namespace ifs {

/// A line chart for training curves (Qt Charts) that stays fast and honest on long runs.
///
/// Series are fed point by point (x non-decreasing, as steps and epochs are) and every raw point
/// is kept. What is drawn is decimated per pixel column of the plot: the minimum and the maximum
/// of each column, in x order, so a single spike among a million points is never hidden. The
/// decimation follows the view (resize, zoom, pan) and is redone at most every 50 ms while data
/// streams in.
///
/// A series can show the bias-corrected exponential moving average of another one
/// (smoothed_t = ema_t / (1 − β^t), as TensorBoard does), with β from an optional slider.
/// Wheel zooms the x axis around the cursor, a left drag zooms into a rectangle, a middle drag (or
/// Shift + left drag) pans, a double click resets. The tool menu (and the context menu) exports
/// the chart as PNG or its raw points as CSV; callers add their own actions to it.
class CurveChart : public QWidget
{
    Q_OBJECT

public:
    struct SeriesStyle
    {
        QColor color = QColor(0x4c, 0x9b, 0xe8);
        qreal width = 1.8;
        Qt::PenStyle pen = Qt::SolidLine;
        qreal opacity = 1.0;
    };

    CurveChart(const QString &title, const QString &xTitle, const QString &yTitle,
               QWidget *parent = nullptr);
    ~CurveChart() override;

    /// Adds an empty series and returns its id.
    int addSeries(const QString &name, const SeriesStyle &style);
    /// Adds a series that draws the bias-corrected EMA of series `source` with smoothing().
    int addSmoothedSeries(int source, const QString &name, const SeriesStyle &style);
    /// Removes a series (and the smoothed series that follow it).
    void removeSeries(int id);
    /// Hidden series are not drawn and leave the legend, but keep their points (and export).
    void setSeriesVisible(int id, bool visible);
    bool hasSeries(int id) const;
    QList<int> seriesIds() const;
    QString seriesName(int id) const;

    void appendPoint(int id, double x, double y);
    void appendPoints(int id, const QList<QPointF> &points);
    void setPoints(int id, const QList<QPointF> &points);
    /// Empties every series, keeping them.
    void clearPoints();
    /// The raw points of a series (for a smoothed one: the smoothed values).
    const std::vector<QPointF> &points(int id) const;
    /// What is drawn for a series now (decimated for the current view).
    QList<QPointF> shownPoints(int id) const;

    /// β of the smoothed series, 0 (none) to 0.999.
    double smoothing() const { return m_beta; }
    void setSmoothing(double beta);
    /// Shows a "Smoothing" slider in the chart's tool bar.
    void setSmoothingControlVisible(bool visible);

    /// A printf format for the y labels; empty (the default): as many decimals as the ticks need.
    void setYLabelFormat(const QString &format);
    /// Ticks on whole numbers only on the x axis (epochs).
    void setXIntegerTicks(bool integer);
    /// Where the export dialogs start (a run folder); default: the home folder.
    void setExportFolder(const QString &folder) { m_exportFolder = folder; }

    /// Back to following the data on both axes.
    void resetZoom();
    bool isZoomed() const { return !m_xAuto || !m_yAuto; }
    /// Shows the x range [x0, x1] (the y axis then fits what is visible in it).
    void zoomX(double x0, double x1);
    double viewMinX() const;
    double viewMaxX() const;

    /// The plot area's width in pixels: the number of decimation columns.
    int plotColumns() const;
    /// Redecimates and fits the axes now instead of at the next tick.
    void refresh();

    /// The raw points of every series as CSV: "series,x,y", one row per point.
    QString toCsv() const;
    Status exportCsv(const QString &path) const;
    bool exportPng(const QString &path);
    void exportPngInteractive();
    void exportCsvInteractive();

    /// The tool menu (also the context menu): Reset Zoom, Export PNG…, Export CSV…; add more.
    QMenu *menu() const { return m_menu; }
    QChart *chart() const { return m_chart; }
    QChartView *chartView() const { return m_view; }
    QString title() const { return m_title; }

    /// Keeps, for each of `columns` equal slices of [x0, x1], the lowest and the highest point in
    /// x order (one when they are the same point); points just outside the range are kept so
    /// lines run to the edges. Non-finite values are skipped. `points` is sorted by x.
    static QList<QPointF> decimateMinMax(const std::vector<QPointF> &points, double x0, double x1,
                                         int columns);
    /// smoothed_t = ema_t / (1 − β^t) with ema_t = β·ema_{t−1} + (1 − β)·y_t, ema_0 = 0 and t
    /// counting the finite points; non-finite points are skipped.
    static std::vector<QPointF> biasCorrectedEma(const std::vector<QPointF> &points, double beta);

Q_SIGNALS:
    void zoomChanged(bool zoomed);
    void smoothingChanged(double beta);

private:
    friend class CurveChartView;
    struct Series;
    Series *find(int id);
    const Series *find(int id) const;
    void scheduleRefresh();
    /// Few points for the width: drawn with markers.
    bool sparse() const;
    void recomputeSmoothed(Series &series);
    void appendSmoothed(Series &smoothed, const QPointF &point);
    void setRanges(double x0, double x1, double y0, double y1, bool xAuto, bool yAuto);
    void panBy(double dx, double dy);
    void updateSmoothingLabel();
    void updateTicks();

    QString m_title;
    QChart *m_chart;
    QChartView *m_view;
    QValueAxis *m_axisX;
    QValueAxis *m_axisY;
    bool m_xIntegerTicks = false;
    int m_columns = -1;
    QString m_yFormat;
    QString m_exportFolder;
    QLabel *m_titleLabel;
    QWidget *m_smoothingBox;
    QSlider *m_smoothingSlider;
    QLabel *m_smoothingLabel;
    QToolButton *m_menuButton;
    QMenu *m_menu;
    std::vector<Series *> m_series;
    int m_nextId = 0;
    double m_beta = 0.6;
    bool m_xAuto = true;
    bool m_yAuto = true;
    double m_x0 = 0, m_x1 = 1, m_y0 = 0, m_y1 = 1;
    bool m_applying = false; // setting axis ranges ourselves: not a user zoom
    QTimer m_refreshTimer;
};

} // namespace ifs
