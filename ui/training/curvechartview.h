#pragma once

#include <QChartView>
#include <QPoint>

class QRubberBand;

namespace ifs {

class CurveChart;

/// The chart view of a CurveChart: wheel zoom of the x axis, rubber band zoom, pan (middle drag
/// or Shift + left drag), double click to reset, the chart's tool menu as context menu. It reads
/// and sets the owner's view ranges (CurveChart makes it a friend).
class CurveChartView : public QChartView
{
public:
    CurveChartView(QChart *chart, CurveChart *owner);

protected:
    void wheelEvent(QWheelEvent *event) override;
    void mousePressEvent(QMouseEvent *event) override;
    void mouseMoveEvent(QMouseEvent *event) override;
    void mouseReleaseEvent(QMouseEvent *event) override;
    void mouseDoubleClickEvent(QMouseEvent *event) override;
    void contextMenuEvent(QContextMenuEvent *event) override;

private:
    /// The data coordinates under a viewport position.
    QPointF toValue(const QPoint &pos) const;
    bool inPlot(const QPoint &pos) const;

    CurveChart *m_owner;
    QRubberBand *m_band;
    QPoint m_origin;
    QPoint m_last;
    bool m_panning = false;
};

} // namespace ifs
