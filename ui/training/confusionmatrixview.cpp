#include "training/confusionmatrixview.h"

#include <QHelpEvent>
#include <QKeyEvent>
#include <QLocale>
#include <QMouseEvent>
#include <QPaintEvent>
#include <QPainter>
#include <QToolTip>

#include <algorithm>
#include <cmath>

namespace ifs {

namespace {

constexpr int kMinCell = 22;
constexpr int kMaxCell = 72;
constexpr int kMaxLabel = 150; // class names longer than this are elided
constexpr int kAxisTitle = 18; // room for "Predicted" / "True class"
const QColor kDiagonal(0x2f, 0x7f, 0xd8);
const QColor kOffDiagonal(0xe7, 0x6f, 0x24);

} // namespace

ConfusionMatrixView::ConfusionMatrixView(QWidget *parent)
    : QWidget(parent)
{
    setObjectName(QStringLiteral("confusionMatrix"));
    setFocusPolicy(Qt::StrongFocus);
    setMouseTracking(false);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void ConfusionMatrixView::setMatrix(const QStringList &classes,
                                    const std::vector<qint64> &confusion)
{
    const qsizetype n = classes.size();
    m_classes = classes;
    m_confusion = confusion;
    m_confusion.resize(size_t(n * n), 0);
    m_rowTotals.assign(size_t(n), 0);
    m_total = 0;
    for (qsizetype t = 0; t < n; ++t)
        for (qsizetype p = 0; p < n; ++p) {
            m_rowTotals[size_t(t)] += m_confusion[size_t(t * n + p)];
            m_total += m_confusion[size_t(t * n + p)];
        }
    if (m_selected.first >= n || m_selected.second >= n)
        m_selected = {-1, -1};
    m_labelExtent = -1;
    updateGeometry();
    update();
}

void ConfusionMatrixView::clear()
{
    setMatrix({}, {});
}

qint64 ConfusionMatrixView::count(int trueClass, int predictedClass) const
{
    const int n = classCount();
    if (trueClass < 0 || predictedClass < 0 || trueClass >= n || predictedClass >= n)
        return 0;
    return m_confusion[size_t(trueClass) * size_t(n) + size_t(predictedClass)];
}

qint64 ConfusionMatrixView::rowTotal(int trueClass) const
{
    return trueClass >= 0 && trueClass < classCount() ? m_rowTotals[size_t(trueClass)] : 0;
}

void ConfusionMatrixView::setNormalized(bool normalized)
{
    m_normalized = normalized;
    update();
}

int ConfusionMatrixView::labelExtent() const
{
    // Measured once per matrix and font: geometry() asks on every paint and click.
    if (m_labelExtent < 0) {
        const QFontMetrics metrics(font());
        int widest = 0;
        for (const QString &name : m_classes)
            widest = std::max(widest, metrics.horizontalAdvance(name));
        m_labelExtent = std::min(widest, kMaxLabel) + 10;
    }
    return m_labelExtent;
}

ConfusionMatrixView::Geometry ConfusionMatrixView::geometry() const
{
    Geometry g;
    const int n = std::max(1, classCount());
    g.labelWidth = labelExtent();
    g.labelHeight = g.labelWidth;
    const int left = kAxisTitle + g.labelWidth;
    const int top = kAxisTitle + g.labelHeight;
    const int room = std::min(width() - left - 4, height() - top - 4);
    g.cell = std::clamp(room / n, kMinCell, kMaxCell);
    // Centre the grid in the space left over.
    const int grid = g.cell * n;
    g.left = left + std::max(0, (width() - left - 4 - grid) / 2);
    g.top = top;
    return g;
}

QSize ConfusionMatrixView::sizeHint() const
{
    const int n = std::max(1, classCount());
    const int label = kAxisTitle + labelExtent();
    return {label + n * 40 + 4, label + n * 40 + 4};
}

QSize ConfusionMatrixView::minimumSizeHint() const
{
    const int n = std::max(1, classCount());
    const int label = kAxisTitle + labelExtent();
    return {label + n * kMinCell + 4, label + n * kMinCell + 4};
}

QRect ConfusionMatrixView::cellRect(int trueClass, int predictedClass) const
{
    const int n = classCount();
    if (trueClass < 0 || predictedClass < 0 || trueClass >= n || predictedClass >= n)
        return {};
    const Geometry g = geometry();
    return {g.left + predictedClass * g.cell, g.top + trueClass * g.cell, g.cell, g.cell};
}

std::pair<int, int> ConfusionMatrixView::cellAt(const QPoint &pos) const
{
    const int n = classCount();
    if (n == 0)
        return {-1, -1};
    const Geometry g = geometry();
    const int column = pos.x() >= g.left ? (pos.x() - g.left) / g.cell : -1;
    const int row = pos.y() >= g.top ? (pos.y() - g.top) / g.cell : -1;
    if (row < 0 || column < 0 || row >= n || column >= n)
        return {-1, -1};
    return {row, column};
}

void ConfusionMatrixView::setSelectedCell(int trueClass, int predictedClass)
{
    const int n = classCount();
    if (trueClass < 0 || predictedClass < 0 || trueClass >= n || predictedClass >= n)
        m_selected = {-1, -1};
    else
        m_selected = {trueClass, predictedClass};
    update();
}

std::pair<int, int> ConfusionMatrixView::worstCell() const
{
    std::pair<int, int> worst{-1, -1};
    qint64 most = 0;
    for (int t = 0; t < classCount(); ++t)
        for (int p = 0; p < classCount(); ++p)
            if (t != p && count(t, p) > most) {
                most = count(t, p);
                worst = {t, p};
            }
    return worst;
}

QString ConfusionMatrixView::cellText(int t, int p) const
{
    const qint64 value = count(t, p);
    if (!m_normalized)
        return QString::number(value);
    const qint64 row = rowTotal(t);
    if (row == 0 || value == 0)
        return QStringLiteral("0");
    const double percent = 100.0 * double(value) / double(row);
    return percent >= 9.95 ? QString::number(percent, 'f', 0) : QString::number(percent, 'f', 1);
}

QString ConfusionMatrixView::cellToolTip(int t, int p) const
{
    const QLocale locale;
    const qint64 value = count(t, p);
    const qint64 row = rowTotal(t);
    const QString share = row > 0 ? QString::number(100.0 * double(value) / double(row), 'f', 1)
                                  : QStringLiteral("0");
    if (t == p)
        return tr("%1: %2 of %3 images right (%4%)")
            .arg(m_classes[t], locale.toString(value), locale.toString(row), share);
    return tr("True %1, predicted %2: %3 images (%4% of %1)")
        .arg(m_classes[t], m_classes[p], locale.toString(value), share);
}

void ConfusionMatrixView::paintEvent(QPaintEvent *event)
{
    QPainter painter(this);
    painter.fillRect(event->rect(), palette().base());
    const int n = classCount();
    if (n == 0)
        return;
    const Geometry g = geometry();
    const QFontMetrics metrics(font());

    // Axis titles.
    QFont titleFont = font();
    titleFont.setBold(true);
    painter.setFont(titleFont);
    painter.setPen(palette().color(QPalette::WindowText));
    painter.drawText(QRect(g.left, 0, g.cell * n, kAxisTitle), Qt::AlignCenter, tr("Predicted"));
    painter.save();
    painter.translate(0, g.top + g.cell * n);
    painter.rotate(-90);
    painter.drawText(QRect(0, 0, g.cell * n, kAxisTitle), Qt::AlignCenter, tr("True class"));
    painter.restore();
    painter.setFont(font());

    // Class names: rows on the left, columns rotated along the top.
    for (int i = 0; i < n; ++i) {
        const QString name = metrics.elidedText(m_classes[i], Qt::ElideRight, kMaxLabel);
        const bool rowSelected = m_selected.first == i;
        const bool columnSelected = m_selected.second == i;
        QFont labelFont = font();
        labelFont.setBold(rowSelected);
        painter.setFont(labelFont);
        painter.drawText(QRect(kAxisTitle, g.top + i * g.cell, g.left - kAxisTitle - 6, g.cell),
                         Qt::AlignRight | Qt::AlignVCenter, name);
        labelFont.setBold(columnSelected);
        painter.setFont(labelFont);
        painter.save();
        painter.translate(g.left + i * g.cell, g.top - 4);
        painter.rotate(-90);
        painter.drawText(QRect(0, 0, g.labelHeight - 4, g.cell), Qt::AlignLeft | Qt::AlignVCenter,
                         name);
        painter.restore();
    }
    painter.setFont(font());

    // Cells: only those the paint event needs.
    const int firstColumn = std::max(0, (event->rect().left() - g.left) / g.cell);
    const int lastColumn = std::min(n - 1, (event->rect().right() - g.left) / g.cell);
    const int firstRow = std::max(0, (event->rect().top() - g.top) / g.cell);
    const int lastRow = std::min(n - 1, (event->rect().bottom() - g.top) / g.cell);
    QFont cellFont = font();
    if (g.cell < 32)
        cellFont.setPointSizeF(cellFont.pointSizeF() * 0.8);
    painter.setFont(cellFont);
    const QFontMetrics cellMetrics(cellFont);
    const QColor grid = palette().color(QPalette::Mid);
    for (int t = firstRow; t <= lastRow; ++t) {
        for (int p = firstColumn; p <= lastColumn; ++p) {
            const QRect rect(g.left + p * g.cell, g.top + t * g.cell, g.cell, g.cell);
            const qint64 value = count(t, p);
            const qint64 row = rowTotal(t);
            const double share = row > 0 ? double(value) / double(row) : 0.0;
            // Off the diagonal small shares matter: a square root makes them visible.
            const double strength = t == p ? share : std::sqrt(share);
            QColor fill = t == p ? kDiagonal : kOffDiagonal;
            fill.setAlphaF(float(value > 0 ? 0.08 + 0.92 * strength : 0.0));
            painter.fillRect(rect, palette().base());
            painter.fillRect(rect, fill);
            painter.setPen(grid);
            painter.drawRect(rect.adjusted(0, 0, -1, -1));
            if (value > 0) {
                const QString text = cellText(t, p);
                if (cellMetrics.horizontalAdvance(text) <= g.cell - 2) {
                    painter.setPen(strength > 0.55 ? Qt::white : palette().color(QPalette::Text));
                    painter.drawText(rect, Qt::AlignCenter, text);
                }
            }
        }
    }
    if (m_selected.first >= 0) {
        const QRect rect = cellRect(m_selected.first, m_selected.second);
        QPen pen(palette().color(QPalette::Highlight), 3);
        pen.setJoinStyle(Qt::MiterJoin);
        painter.setPen(pen);
        painter.setBrush(Qt::NoBrush);
        painter.drawRect(rect.adjusted(1, 1, -2, -2));
    }
}

void ConfusionMatrixView::mousePressEvent(QMouseEvent *event)
{
    if (event->button() != Qt::LeftButton) {
        QWidget::mousePressEvent(event);
        return;
    }
    const auto [t, p] = cellAt(event->position().toPoint());
    if (t < 0)
        return;
    setSelectedCell(t, p);
    Q_EMIT cellClicked(t, p);
}

void ConfusionMatrixView::keyPressEvent(QKeyEvent *event)
{
    const int n = classCount();
    if (n == 0) {
        QWidget::keyPressEvent(event);
        return;
    }
    auto [t, p] = m_selected;
    if (t < 0)
        t = p = 0;
    switch (event->key()) {
    case Qt::Key_Left:
        p = std::max(0, p - 1);
        break;
    case Qt::Key_Right:
        p = std::min(n - 1, p + 1);
        break;
    case Qt::Key_Up:
        t = std::max(0, t - 1);
        break;
    case Qt::Key_Down:
        t = std::min(n - 1, t + 1);
        break;
    case Qt::Key_Return:
    case Qt::Key_Enter:
    case Qt::Key_Space:
        break;
    default:
        QWidget::keyPressEvent(event);
        return;
    }
    setSelectedCell(t, p);
    Q_EMIT cellClicked(t, p);
}

bool ConfusionMatrixView::event(QEvent *event)
{
    if (event->type() == QEvent::FontChange) {
        m_labelExtent = -1;
        updateGeometry();
    }
    if (event->type() == QEvent::ToolTip) {
        auto *help = static_cast<QHelpEvent *>(event);
        const auto [t, p] = cellAt(help->pos());
        if (t >= 0)
            QToolTip::showText(help->globalPos(), cellToolTip(t, p), this, cellRect(t, p));
        else
            QToolTip::hideText();
        return true;
    }
    return QWidget::event(event);
}

} // namespace ifs
