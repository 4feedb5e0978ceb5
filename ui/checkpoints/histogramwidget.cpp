#include "checkpoints/histogramwidget.h"

#include <QPainter>

#include <algorithm>
#include <cmath>

namespace ifs {

HistogramWidget::HistogramWidget(QWidget *parent)
    : QWidget(parent)
{
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void HistogramWidget::setStats(const ckpt::TensorStats &stats)
{
    m_stats = stats;
    setToolTip(stats.histogram.isEmpty() ? QString()
                                         : tr("%1 bins from %2 to %3")
                                               .arg(stats.histogram.size())
                                               .arg(stats.min, 0, 'g', 5)
                                               .arg(stats.max, 0, 'g', 5));
    update();
}

QSize HistogramWidget::sizeHint() const
{
    return {320, 140};
}

QSize HistogramWidget::minimumSizeHint() const
{
    return {120, 60};
}

void HistogramWidget::paintEvent(QPaintEvent *)
{
    QPainter painter(this);
    painter.setRenderHint(QPainter::Antialiasing, false);
    const QRect area = rect().adjusted(4, 4, -4, -fontMetrics().height() - 6);
    painter.fillRect(area, palette().base());
    painter.setPen(palette().mid().color());
    painter.drawRect(area.adjusted(0, 0, -1, -1));
    const QList<qint64> &bins = m_stats.histogram;
    if (bins.isEmpty() || area.width() < 4 || area.height() < 4)
        return;
    const qint64 peak = std::max<qint64>(1, *std::max_element(bins.begin(), bins.end()));
    const double barWidth = double(area.width() - 2) / double(bins.size());
    const QColor bar = palette().highlight().color();
    for (int i = 0; i < bins.size(); ++i) {
        if (bins[i] == 0)
            continue;
        // A square-root scale keeps sparse tails visible next to a tall peak.
        const double h = std::sqrt(double(bins[i]) / double(peak)) * (area.height() - 2);
        const QRectF r(area.left() + 1 + i * barWidth, area.bottom() - h,
                       std::max(1.0, barWidth - 1.0), h);
        painter.fillRect(r, bar);
    }
    if (m_stats.min <= 0.0 && m_stats.max >= 0.0 && m_stats.max > m_stats.min) {
        const double x = area.left() + 1
            + (0.0 - m_stats.min) / (m_stats.max - m_stats.min) * (area.width() - 2);
        painter.setPen(QPen(palette().text().color(), 1, Qt::DashLine));
        painter.drawLine(QPointF(x, area.top()), QPointF(x, area.bottom()));
    }
    painter.setPen(palette().text().color());
    const QRect labels(area.left(), area.bottom() + 3, area.width(), fontMetrics().height());
    painter.drawText(labels, Qt::AlignLeft, QString::number(m_stats.min, 'g', 4));
    painter.drawText(labels, Qt::AlignRight, QString::number(m_stats.max, 'g', 4));
    if (m_stats.min < 0.0 && m_stats.max > 0.0)
        painter.drawText(labels, Qt::AlignHCenter, tr("sqrt scale"));
}

} // namespace ifs
