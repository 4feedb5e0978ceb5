#include "training/curvechartview.h"

#include "training/curvechart.h"

#include <QContextMenuEvent>
#include <QMenu>
#include <QMouseEvent>
#include <QRubberBand>
#include <QWheelEvent>

#include <algorithm>
#include <cmath>

namespace ifs {

CurveChartView::CurveChartView(QChart *chart, CurveChart *owner)
    : QChartView(chart, owner)
    , m_owner(owner)
    , m_band(new QRubberBand(QRubberBand::Rectangle, viewport()))
{
    setRenderHint(QPainter::Antialiasing);
    setRubberBand(QChartView::NoRubberBand);
    setMouseTracking(false);
}

QPointF CurveChartView::toValue(const QPoint &pos) const
{
    const QRectF plot = chart()->plotArea();
    const QPointF p = chart()->mapFromScene(mapToScene(pos));
    const double fx = plot.width() > 0 ? (p.x() - plot.left()) / plot.width() : 0.0;
    const double fy = plot.height() > 0 ? (plot.bottom() - p.y()) / plot.height() : 0.0;
    return {m_owner->m_x0 + fx * (m_owner->m_x1 - m_owner->m_x0),
            m_owner->m_y0 + fy * (m_owner->m_y1 - m_owner->m_y0)};
}

bool CurveChartView::inPlot(const QPoint &pos) const
{
    return chart()->plotArea().contains(chart()->mapFromScene(mapToScene(pos)));
}

void CurveChartView::wheelEvent(QWheelEvent *event)
{
    const QPoint pos = event->position().toPoint();
    const int delta = event->angleDelta().y();
    if (!inPlot(pos) || delta == 0) {
        QChartView::wheelEvent(event);
        return;
    }
    const double factor = std::pow(0.85, delta / 120.0);
    const double xc = toValue(pos).x();
    const double x0 = xc - (xc - m_owner->m_x0) * factor;
    const double x1 = xc + (m_owner->m_x1 - xc) * factor;
    m_owner->zoomX(x0, x1);
    event->accept();
}

void CurveChartView::mousePressEvent(QMouseEvent *event)
{
    const QPoint pos = event->position().toPoint();
    if (event->button() == Qt::MiddleButton
        || (event->button() == Qt::LeftButton && (event->modifiers() & Qt::ShiftModifier))) {
        m_panning = true;
        m_last = pos;
        viewport()->setCursor(Qt::ClosedHandCursor);
        event->accept();
        return;
    }
    if (event->button() == Qt::LeftButton && inPlot(pos)) {
        m_origin = pos;
        m_band->setGeometry(QRect(m_origin, QSize()));
        m_band->show();
        event->accept();
        return;
    }
    QChartView::mousePressEvent(event);
}

void CurveChartView::mouseMoveEvent(QMouseEvent *event)
{
    const QPoint pos = event->position().toPoint();
    if (m_panning) {
        const QRectF plot = chart()->plotArea();
        const QPoint d = pos - m_last;
        m_last = pos;
        if (plot.width() > 0 && plot.height() > 0)
            m_owner->panBy(-d.x() * (m_owner->m_x1 - m_owner->m_x0) / plot.width(),
                           d.y() * (m_owner->m_y1 - m_owner->m_y0) / plot.height());
        event->accept();
        return;
    }
    if (m_band->isVisible()) {
        m_band->setGeometry(QRect(m_origin, pos).normalized());
        event->accept();
        return;
    }
    QChartView::mouseMoveEvent(event);
}

void CurveChartView::mouseReleaseEvent(QMouseEvent *event)
{
    if (m_panning) {
        m_panning = false;
        viewport()->unsetCursor();
        event->accept();
        return;
    }
    if (m_band->isVisible()) {
        m_band->hide();
        const QRect rect = m_band->geometry();
        if (rect.width() >= 4) {
            const QPointF a = toValue(rect.topLeft());
            const QPointF b = toValue(rect.bottomRight());
            if (rect.height() >= 4)
                m_owner->setRanges(a.x(), b.x(), std::min(a.y(), b.y()), std::max(a.y(), b.y()),
                                   false, false);
            else
                m_owner->zoomX(a.x(), b.x());
        }
        event->accept();
        return;
    }
    QChartView::mouseReleaseEvent(event);
}

void CurveChartView::mouseDoubleClickEvent(QMouseEvent *event)
{
    m_owner->resetZoom();
    event->accept();
}

void CurveChartView::contextMenuEvent(QContextMenuEvent *event)
{
    m_owner->menu()->exec(event->globalPos());
}

} // namespace ifs
