#include "transforms/imagetile.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QPainter>

#include <algorithm>
#include <cmath>

namespace ifs {

ImageTile::ImageTile(QWidget *parent)
    : QFrame(parent)
{
    setFrameShape(QFrame::NoFrame);
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Expanding);
}

void ImageTile::setImage(const QImage &image, QSize sourceSize)
{
    m_image = image;
    m_sourceSize = sourceSize.isValid() ? sourceSize : image.size();
    m_scaled = QPixmap();
    m_message.clear();
    update();
}

void ImageTile::setMessage(const QString &text, bool error)
{
    m_message = text;
    m_error = error;
    m_image = QImage();
    m_scaled = QPixmap();
    m_boxes.clear();
    setToolTip(text);
    update();
}

void ImageTile::setCaption(const QString &title, const QString &detail, const QString &extra)
{
    const int before = captionLines();
    m_title = title;
    m_detail = detail;
    m_extra = extra;
    if (captionLines() != before)
        updateGeometry();
    update();
}

void ImageTile::setBoxes(const QList<Box> &boxes)
{
    m_boxes = boxes;
    update();
}

void ImageTile::setSelected(bool selected)
{
    if (m_selected == selected)
        return;
    m_selected = selected;
    update();
}

void ImageTile::setClickable(bool clickable)
{
    m_clickable = clickable;
    setCursor(clickable ? Qt::PointingHandCursor : Qt::ArrowCursor);
    setFocusPolicy(clickable ? Qt::StrongFocus : Qt::NoFocus);
}

void ImageTile::setMinimumImageSide(int pixels)
{
    m_minimumSide = pixels;
    updateGeometry();
}

int ImageTile::captionLines() const
{
    return (m_title.isEmpty() ? 0 : 1) + (m_detail.isEmpty() ? 0 : 1) + (m_extra.isEmpty() ? 0 : 1);
}

QSize ImageTile::sizeHint() const
{
    const int side = std::max(m_minimumSide, 160);
    return {side + 8, side + 8 + captionLines() * fontMetrics().height()};
}

QSize ImageTile::minimumSizeHint() const
{
    return {m_minimumSide + 8, m_minimumSide + 8 + captionLines() * fontMetrics().height()};
}

QRect ImageTile::imageArea() const
{
    QRect area = contentsRect().adjusted(3, 3, -3, -3);
    area.setBottom(area.bottom() - captionLines() * fontMetrics().height()
                   - (captionLines() ? 2 : 0));
    return area;
}

void ImageTile::paintEvent(QPaintEvent *event)
{
    QFrame::paintEvent(event);
    QPainter painter(this);
    const QRect area = imageArea();
    const QPalette pal = palette();

    if (m_selected) {
        painter.setPen(QPen(pal.color(QPalette::Highlight), 3));
        painter.setBrush(Qt::NoBrush);
        painter.drawRect(rect().adjusted(1, 1, -2, -2));
    } else if (hasFocus()) {
        painter.setPen(QPen(pal.color(QPalette::Highlight), 1, Qt::DotLine));
        painter.drawRect(rect().adjusted(0, 0, -1, -1));
    }
    painter.fillRect(area, pal.color(QPalette::Window).darker(112));

    if (!m_message.isEmpty()) {
        painter.setPen(m_error ? QColor(0xb0, 0x00, 0x20) : pal.color(QPalette::PlaceholderText));
        painter.drawText(area.adjusted(6, 6, -6, -6), Qt::AlignCenter | Qt::TextWordWrap,
                         m_message);
    } else if (!m_image.isNull() && area.width() > 4 && area.height() > 4) {
        const double fit = std::min(double(area.width()) / m_image.width(),
                                    double(area.height()) / m_image.height());
        // Enlarge by whole factors with nearest neighbour (pixels stay square and crisp).
        const bool enlarge = fit >= 1.0;
        const double scale = enlarge ? std::floor(fit) : fit;
        const QSize target(std::max(1, int(std::lround(m_image.width() * scale))),
                           std::max(1, int(std::lround(m_image.height() * scale))));
        if (m_scaled.size() != target)
            m_scaled = QPixmap::fromImage(
                m_image.scaled(target, Qt::IgnoreAspectRatio,
                               enlarge ? Qt::FastTransformation : Qt::SmoothTransformation));
        const QRect targetRect(area.left() + (area.width() - target.width()) / 2,
                               area.top() + (area.height() - target.height()) / 2, target.width(),
                               target.height());
        painter.drawPixmap(targetRect.topLeft(), m_scaled);
        if (!m_boxes.isEmpty() && m_sourceSize.isValid()) {
            const double sx = double(targetRect.width()) / m_sourceSize.width();
            const double sy = double(targetRect.height()) / m_sourceSize.height();
            painter.setRenderHint(QPainter::Antialiasing);
            painter.setClipRect(area); // padded crops reach past the image
            // Plain boxes first, the emphasised one on top.
            for (int pass = 0; pass < 2; ++pass) {
                for (const Box &box : std::as_const(m_boxes)) {
                    if (box.emphasised != (pass == 1))
                        continue;
                    const QRectF r(targetRect.left() + box.rect.left() * sx,
                                   targetRect.top() + box.rect.top() * sy, box.rect.width() * sx,
                                   box.rect.height() * sy);
                    if (box.emphasised) {
                        painter.setPen(QPen(QColor(0, 0, 0, 140), 5));
                        painter.drawRect(r);
                    }
                    QPen pen(box.color, box.emphasised ? 3 : 1.5);
                    if (box.dashed)
                        pen.setStyle(Qt::DashLine);
                    painter.setPen(pen);
                    painter.drawRect(r);
                }
            }
            painter.setClipping(false);
        }
    }

    // Caption: title, detail, extra.
    int y = area.bottom() + 3;
    const int width = contentsRect().width() - 6;
    const int lineHeight = fontMetrics().height();
    auto line = [&](const QString &text, bool bold, bool dim) {
        if (text.isEmpty())
            return;
        QFont font = this->font();
        font.setBold(bold);
        painter.setFont(font);
        QColor color = pal.color(QPalette::WindowText);
        if (dim)
            color.setAlphaF(0.65);
        painter.setPen(color);
        const QString elided = QFontMetrics(font).elidedText(text, Qt::ElideRight, width);
        painter.drawText(QRect(contentsRect().left() + 3, y, width, lineHeight),
                         Qt::AlignHCenter | Qt::AlignVCenter, elided);
        y += lineHeight;
    };
    line(m_title, true, false);
    line(m_detail, false, true);
    line(m_extra, false, true);
}

void ImageTile::mousePressEvent(QMouseEvent *event)
{
    if (m_clickable && event->button() == Qt::LeftButton) {
        Q_EMIT clicked();
        event->accept();
        return;
    }
    QFrame::mousePressEvent(event);
}

void ImageTile::keyPressEvent(QKeyEvent *event)
{
    if (m_clickable
        && (event->key() == Qt::Key_Space || event->key() == Qt::Key_Return
            || event->key() == Qt::Key_Enter)) {
        Q_EMIT clicked();
        return;
    }
    QFrame::keyPressEvent(event);
}

} // namespace ifs
