#pragma once

#include <QString>
#include <QWidget>

namespace ifs {

/// One line of plain text that shortens with an ellipsis when its space is short, instead of
/// being cut off or widening the window: its size hint is the whole text, its minimum just the
/// ellipsis, so a layout gives it what is left and the widgets beside it keep their room.
class ElidedLabel : public QWidget
{
    Q_OBJECT

public:
    explicit ElidedLabel(QWidget *parent = nullptr);

    void setText(const QString &text);
    QString text() const { return m_text; }
    void clear() { setText({}); }
    /// Where the ellipsis goes; Qt::ElideMiddle (the default) keeps a file's extension.
    void setElideMode(Qt::TextElideMode mode);
    /// The text as drawn at the current width.
    QString displayedText() const;

    QSize sizeHint() const override;
    QSize minimumSizeHint() const override;

protected:
    void paintEvent(QPaintEvent *event) override;

private:
    QString m_text;
    Qt::TextElideMode m_mode = Qt::ElideMiddle;
};

} // namespace ifs
