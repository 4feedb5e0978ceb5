#pragma once

#include <QColor>
#include <QFrame>
#include <QImage>
#include <QList>
#include <QPixmap>
#include <QRectF>

namespace ifs {

/// An image scaled to fit, with a caption: small images are enlarged by whole factors with
/// nearest-neighbour sampling so that a 28 × 28 image shows its pixels; large ones are reduced
/// smoothly. Optional boxes are drawn in the image's source coordinates. Clickable.
class ImageTile : public QFrame
{
    Q_OBJECT

public:
    struct Box
    {
        QRectF rect; ///< in source coordinates
        QColor color;
        bool emphasised = false;
        bool dashed = false;
    };

    explicit ImageTile(QWidget *parent = nullptr);

    /// sourceSize: the size the boxes' coordinates refer to (the image's own size when empty).
    void setImage(const QImage &image, QSize sourceSize = {});
    QImage image() const { return m_image; }
    /// A message instead of the image (an error in red).
    void setMessage(const QString &text, bool error = false);
    QString message() const { return m_message; }
    void setCaption(const QString &title, const QString &detail = {}, const QString &extra = {});
    QString captionTitle() const { return m_title; }
    QString captionDetail() const { return m_detail; }
    void setBoxes(const QList<Box> &boxes);
    void setSelected(bool selected);
    bool isSelected() const { return m_selected; }
    void setClickable(bool clickable);
    void setMinimumImageSide(int pixels);

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

Q_SIGNALS:
    void clicked();

protected:
    void paintEvent(QPaintEvent *event) override;
    void mousePressEvent(QMouseEvent *event) override;
    void keyPressEvent(QKeyEvent *event) override;

private:
    int captionLines() const;
    QRect imageArea() const;

    QImage m_image;
    QSize m_sourceSize;
    QPixmap m_scaled; // cache for the current size
    QString m_message;
    bool m_error = false;
    QString m_title;
    QString m_detail;
    QString m_extra;
    QList<Box> m_boxes;
    bool m_selected = false;
    bool m_clickable = false;
    int m_minimumSide = 64;
};

} // namespace ifs
